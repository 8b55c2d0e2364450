"""Keep-alives while the model is silent, and cancellation of the backend stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.inference.sse import sse_event
from gateway.inference.streaming import HEARTBEAT, with_heartbeats


class SlowTokens:
    """A token stream with delays, recording whether it was cancelled."""

    def __init__(self, delays: list[float], fail_after: int | None = None) -> None:
        self.delays = delays
        self.fail_after = fail_after
        self.cancelled = False

    async def _tokens(self) -> AsyncIterator[int]:
        for index, delay in enumerate(self.delays):
            if index == self.fail_after:
                raise RuntimeError("backend died")
            await asyncio.sleep(delay)
            yield index

    def __aiter__(self) -> AsyncIterator[int]:
        return self._tokens()

    def cancel(self) -> None:
        self.cancelled = True


async def flat(stream: AsyncIterator[list[int] | object]) -> list[object]:
    """The stream with its batches unpacked: items and heartbeats in order."""
    return [
        item async for batch in stream for item in (batch if isinstance(batch, list) else [batch])
    ]


async def test_a_silent_source_produces_heartbeats_between_items() -> None:
    items = await flat(with_heartbeats(SlowTokens([0.0, 0.35, 0.0]), 0.1))
    assert [item for item in items if item is not HEARTBEAT] == [0, 1, 2]
    assert 2 <= items.count(HEARTBEAT) <= 4
    assert items.index(1) > items.index(0) + 1


async def test_a_busy_source_produces_no_heartbeats() -> None:
    items = await flat(with_heartbeats(SlowTokens([0.01] * 20), 0.5))
    assert items == list(range(20))


async def test_closing_the_stream_early_cancels_the_source() -> None:
    source = SlowTokens([0.0, 10.0])
    stream = with_heartbeats(source, 0.1)
    assert await anext(stream) == [0]
    await stream.aclose()
    assert source.cancelled


async def test_a_source_error_reaches_the_reader() -> None:
    stream = with_heartbeats(SlowTokens([0.0, 0.0], fail_after=1), 1.0)
    assert await anext(stream) == [0]
    with pytest.raises(RuntimeError, match="backend died"):
        await anext(stream)


async def test_items_that_arrived_together_come_as_one_batch() -> None:
    stream = with_heartbeats(SlowTokens([0.0, 0.0, 0.0]), 1.0)
    assert await anext(stream) == [0]
    await asyncio.sleep(0.05)
    assert await anext(stream) == [1, 2]


def test_events_are_compact_json_data_lines() -> None:
    assert sse_event({"response": "Grüße"}) == 'data: {"response":"Grüße"}\n\n'.encode()


class Leftovers:
    """What the running loop holds beyond a baseline: pending timers and other tasks."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.baseline = self._now()

    def _now(self) -> tuple[int, set[asyncio.Task[object]]]:
        scheduled: list[asyncio.TimerHandle] = self.loop._scheduled  # type: ignore[attr-defined]
        timers = sum(1 for handle in scheduled if not handle.cancelled())
        return timers, asyncio.all_tasks() - {asyncio.current_task()}

    async def after(self, settle: float = 0.05) -> tuple[int, set[asyncio.Task[object]]]:
        """(timers, tasks) added since the baseline, once callbacks due now have run."""
        await asyncio.sleep(settle)
        timers, tasks = self._now()
        return timers - self.baseline[0], tasks - self.baseline[1]


async def test_a_completed_stream_leaves_no_timer_or_task() -> None:
    leftovers = Leftovers()
    await flat(with_heartbeats(SlowTokens([0.0, 0.03, 0.0]), 0.01))
    assert await leftovers.after() == (0, set())


async def test_a_stream_closed_mid_way_leaves_no_timer_or_task() -> None:
    leftovers = Leftovers()
    stream = with_heartbeats(SlowTokens([0.0, 10.0]), 0.01)
    assert await anext(stream) == [0]
    await stream.aclose()
    assert await leftovers.after() == (0, set())


async def test_a_stream_failed_by_its_source_leaves_no_timer_or_task() -> None:
    leftovers = Leftovers()
    stream = with_heartbeats(SlowTokens([0.0, 0.03], fail_after=1), 0.01)
    with pytest.raises(RuntimeError, match="backend died"):
        await flat(stream)
    assert await leftovers.after() == (0, set())


async def test_a_reader_that_stops_reading_gets_one_heartbeat_not_one_per_interval() -> None:
    stream = with_heartbeats(SlowTokens([0.0, 0.1]), 0.01)
    while (batch := await anext(stream)) == HEARTBEAT:  # a busy machine delays the first token
        pass
    assert batch == [0]
    await asyncio.sleep(0.2)
    assert [batch async for batch in stream] == [HEARTBEAT, [1]]
