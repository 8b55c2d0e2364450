"""Keep-alives while the model is silent, and cancellation of the backend stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.inference.streaming import HEARTBEAT, sse_event, with_heartbeats


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
