from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

AccountName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]*\Z")
]


class AccountCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: AccountName


class AccountRead(msgspec.Struct, frozen=True):
    id: str
    name: str
    created_at: datetime
