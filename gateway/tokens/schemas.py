from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

TokenName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+\Z",
        description="Any text without control characters",
    ),
]


class TokenCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: TokenName
    expires_at: datetime | None = None


class TokenRead(msgspec.Struct, frozen=True):
    id: str
    account_id: str
    name: str
    token_prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(msgspec.Struct, frozen=True):
    """The only response that carries the secret: it is stored as a hash, never again shown."""

    id: str
    account_id: str
    name: str
    token: str
    token_prefix: str
    created_at: datetime
    expires_at: datetime | None


class TokenVerification(msgspec.Struct, frozen=True):
    id: str
    account_id: str
    """An extension of Cloudflare's answer: the account the token belongs to."""
    status: str
    expires_at: datetime | None
