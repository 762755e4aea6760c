"""The dashboard's live event stream: post-commit changes filtered by what each token may see."""
