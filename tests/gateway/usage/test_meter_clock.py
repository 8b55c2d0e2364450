"""A metered request's times come from the meter's clock: start, first token, end."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gateway.metrics.registry import GatewayMetrics
from gateway.usage.meter import Meter, UsageMeter
from gateway.usage.status import RunStatus
from tests.gateway.clock import SteppedClock


def test_a_records_times_are_the_meters_clocks(tmp_path: Path) -> None:
    clock = SteppedClock(1_700_000_000)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    meter = Meter(async_sessionmaker(engine), tmp_path, 4, 60.0, 16, GatewayMetrics(), clock)
    try:
        run = meter.open("r1", "acct", "tok", "m", 3)
        clock.step(0.25)
        run.first_token()
        clock.step(1.5)
        run.finish(RunStatus.OK)
    finally:
        meter.journal.shutdown(keep=False)
    times = (run.record.started_at, run.record.first_token_at, run.record.ended_at)
    assert times == (1_700_000_000, 1_700_000_000.25, 1_700_000_001.75)


def test_with_metering_off_the_first_token_is_still_timed_by_the_clock() -> None:
    clock = SteppedClock(1_700_000_000)
    run = UsageMeter(clock).open("r1", "acct", "tok", "m", 3)
    run.first_token()
    assert run.record.first_token_at == 1_700_000_000
