"""Identity: a Keystone v3-compatible service."""
