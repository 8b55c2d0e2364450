"""Token secrets: high-entropy, recognisable by their prefix, kept only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "gwk_"  # noqa: S105 (a public marker, not a secret)
DISPLAY_PREFIX_LENGTH = 12


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
