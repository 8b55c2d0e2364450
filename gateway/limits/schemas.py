from __future__ import annotations

from typing import Annotated

import msgspec

Rate = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
"""Per minute or concurrent: the database keeps these in 32-bit integers."""
Quota = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


class LimitValues(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An account's own limits: null = the gateway's default, 0 = no limit."""

    requests_per_minute: Rate | None = None
    tokens_per_minute: Rate | None = None
    concurrent_streams: Rate | None = None
    monthly_tokens: Quota | None = None


class AccountLimitsRead(msgspec.Struct, frozen=True):
    account_id: str
    own: LimitValues
    effective: LimitValues
