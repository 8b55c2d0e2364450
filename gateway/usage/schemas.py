from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

AccountGrouping = Literal["day", "model"]
AdminGrouping = Literal["day", "model", "account"]


class UsageRow(msgspec.Struct, frozen=True):
    """One group's totals; `key` is the day (YYYY-MM-DD), model name or account id."""

    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageReport(msgspec.Struct, frozen=True):
    """An account's own report: nothing in it describes the replica or other accounts."""

    since: str
    until: str
    group_by: str
    rows: list[UsageRow]


class AdminUsageReport(UsageReport, frozen=True):
    """Any accounts' report, with what this replica has yet to write."""

    pending_records: int
    """Records this replica has not written yet (they are not in `rows`), of every account."""


class UsageRecordRead(msgspec.Struct, frozen=True):
    request_id: str
    account_id: str
    token_id: str
    model: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float | None
    duration_ms: float
    started_at: datetime
    client_request_id: str | None
    """The client's `X-Request-Id`, if it sent one (`request_id` is the gateway's)."""
