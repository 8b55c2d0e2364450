"""API tokens: per-account bearer secrets, stored only as SHA-256 hashes."""
