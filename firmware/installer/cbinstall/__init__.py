"""cloudbox's installer: runs in the ISO's live system (see packaging/ISO.md)."""
