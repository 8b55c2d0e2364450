"""A client's own request id (`X-Request-Id`), kept with its usage record.

The record's id is the gateway's; the client's is what the client can look its record up by.
It is stored only in this form: ASCII letters, digits, `.`, `_` and `-`, at most 64 (one byte
each, so it fits the journal's slot and the column alike).
"""

from __future__ import annotations

import re

MAX_LENGTH = 64
FORM = "1 to 64 characters of letters, digits, '.', '_' and '-'"
"""What a client request id is, as refusals say it."""
PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
"""As documented (OpenAPI, where `$` ends the input); check values with `is_client_request_id`."""

_WHOLE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_client_request_id(value: str) -> bool:
    """Whether `value` is a storable client request id: the whole of it (Python's `$` would
    let a trailing newline through)."""
    return _WHOLE.fullmatch(value) is not None


def storable(value: str | None) -> str | None:
    """`value` if it is a client request id, else None: the usage record is kept without it
    rather than refused by the database (the run pipeline refuses a bad header first)."""
    return value if value is not None and is_client_request_id(value) else None
