"""The event loop gauges count armed timers and running tasks on asyncio and on uvloop."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine

import pytest
import uvloop

from gateway.metrics.event_loop import pending_timers, running_tasks

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def on(loop_name: str, main: Callable[[], Coroutine[None, None, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_timer_is_counted_until_it_is_cancelled_or_fires(loop_name: str) -> None:
    async def main() -> None:
        idle = pending_timers()
        loop = asyncio.get_running_loop()
        cancelled = [loop.call_later(60, print) for _ in range(3)]
        fires = loop.call_later(0.01, lambda: None)
        assert pending_timers() == idle + 4
        for timer in cancelled:
            timer.cancel()
        await asyncio.sleep(0.05)
        for _ in range(2):  # uvloop frees a timer at the end of the iteration it fired in
            await asyncio.sleep(0)
        assert pending_timers() == idle
        assert fires.when() > 0

    on(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_running_tasks_are_counted_until_they_end(loop_name: str) -> None:
    async def main() -> None:
        idle = running_tasks()
        sleepers = [asyncio.create_task(asyncio.sleep(60)) for _ in range(2)]
        assert running_tasks() == idle + 2
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        assert running_tasks() == idle

    on(loop_name, main)


def test_outside_a_running_loop_the_gauges_are_unknown() -> None:
    assert math.isnan(pending_timers())
    assert math.isnan(running_tasks())
