"""How a run ended: the usage record's `status`, and the `status` label of the request metric."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The order is the journal's on-disk code of each status: append, never reorder."""

    OK = "ok"
    CLIENT_CANCELLED = "client_cancelled"
    """The client left before its answer was complete."""
    REJECTED = "rejected"
    """Refused before the backend: bad input, unknown model, over the model's limits."""
    BACKEND_ERROR = "backend_error"
    RATE_LIMITED = "rate_limited"
    """Refused by a rate limit, the concurrency limit or the monthly quota."""
    INTERRUPTED = "interrupted"
    """The gateway process died while the run was open (found in its journal later)."""


SERVED_STATUSES = tuple(status for status in RunStatus if status is not RunStatus.INTERRUPTED)
"""What a live gateway records (and counts in its metrics)."""
