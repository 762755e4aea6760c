"""The state core: replicated commands applied deterministically to SQLite."""
