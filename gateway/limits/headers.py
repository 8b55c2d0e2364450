"""The `x-ratelimit-*` headers: for each budget an admission reached, its limit, what it has left
once this request is counted, and the seconds until its window resets."""

from __future__ import annotations

REQUESTS = "requests"
"""Requests per minute."""
TOKENS = "tokens"
"""Tokens per minute."""
MONTHLY_TOKENS = "monthly-tokens"
"""The monthly token quota."""


def rate_limit_headers(name: str, limit: int, remaining: int, reset_seconds: int) -> dict[str, str]:
    """`name` is one of the budgets above."""
    return {
        f"x-ratelimit-limit-{name}": str(limit),
        f"x-ratelimit-remaining-{name}": str(remaining),
        f"x-ratelimit-reset-{name}": str(reset_seconds),
    }
