"""The limits' windows at fixed instants: a minute's last second, a month's last second in
December, a leap February, the first instant of a window."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from gateway.limits.windows import (
    MINUTE_COUNTER_TTL,
    MONTH_COUNTER_GRACE,
    minute_window,
    month_window,
)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_minute_is_keyed_by_minutes_since_the_epoch() -> None:
    assert minute_window(0).index == 0
    assert minute_window(59.999).index == 0
    assert minute_window(60).index == 1
    assert minute_window(at("2024-02-29T12:34:56")).index == at("2024-02-29T12:34:00") // 60


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        (at("2024-06-15T10:00:00"), 60),  # its first instant: a whole minute to go
        (at("2024-06-15T10:00:00") + 0.999, 60),  # still counted in whole seconds
        (at("2024-06-15T10:00:30"), 30),
        (at("2024-06-15T10:00:59"), 1),  # its last second
        (at("2024-06-15T10:00:59") + 0.999, 1),  # never 0: `Retry-After: 0` invites a retry now
    ],
)
def test_a_minute_resets_when_the_next_one_starts(now: float, reset: int) -> None:
    assert minute_window(now).reset_seconds == reset


def test_the_last_second_of_a_minute_and_the_next_minute_are_two_windows() -> None:
    last = minute_window(at("2024-06-15T10:00:59.5"))
    first = minute_window(at("2024-06-15T10:01:00"))
    assert first.index == last.index + 1
    assert (last.reset_seconds, first.reset_seconds) == (1, 60)


def test_a_minutes_counter_outlives_its_window_by_a_second() -> None:
    assert minute_window(at("2024-06-15T10:00:00")).counter_ttl == MINUTE_COUNTER_TTL == 61


def test_the_last_second_of_december_ends_the_year() -> None:
    month = month_window(at("2024-12-31T23:59:59"))
    assert (month.start, month.end) == (utc("2024-12-01T00:00:00"), utc("2025-01-01T00:00:00"))
    assert month.label == "2024-12"
    assert month.reset_seconds == 1
    assert month.counter_ttl == 1 + MONTH_COUNTER_GRACE


def test_the_first_instant_of_january_is_the_new_year() -> None:
    month = month_window(at("2025-01-01T00:00:00"))
    assert (month.start, month.end) == (utc("2025-01-01T00:00:00"), utc("2025-02-01T00:00:00"))
    assert month.label == "2025-01"
    assert month.reset_seconds == 31 * 86400


def test_a_leap_february_ends_after_its_29th() -> None:
    month = month_window(at("2024-02-29T12:00:00"))
    assert (month.start, month.end) == (utc("2024-02-01T00:00:00"), utc("2024-03-01T00:00:00"))
    assert month.reset_seconds == 12 * 3600
    assert month_window(at("2024-02-01T00:00:00")).reset_seconds == 29 * 86400


def test_a_common_february_ends_after_its_28th() -> None:
    month = month_window(at("2023-02-28T23:59:59.5"))
    assert month.end == utc("2023-03-01T00:00:00")
    assert month.reset_seconds == 1  # half a second left: still at least 1
    assert month.counter_ttl == pytest.approx(0.5 + MONTH_COUNTER_GRACE)
    assert month_window(at("2023-02-01T00:00:00")).reset_seconds == 28 * 86400


def test_a_month_is_calendar_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """23:30 on the 31st of March in UTC is already April in Paris: still March here."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        month = month_window(at("2024-03-31T23:30:00"))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert month.label == "2024-03"
    assert month.reset_seconds == 30 * 60
