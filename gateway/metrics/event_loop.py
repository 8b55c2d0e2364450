"""What the serving event loop holds: its tasks and its pending timers, read at scrape time.

Both should return to their idle level once traffic stops; a count that grows with the
requests served is work that outlived its request (a leak), visible before it costs CPU.
"""

from __future__ import annotations

import asyncio
import gc

import uvloop.loop

_UV_TIMER: type | None = getattr(uvloop.loop, "UVTimer", None)
"""uvloop's libuv timer object (not in its type stubs)."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # scraped outside the loop (a test's own collect)
        return None


def running_tasks() -> float:
    loop = _running_loop()
    return float("nan") if loop is None else float(len(asyncio.all_tasks(loop)))


def pending_timers() -> float:
    """Timers armed and not yet fired or cancelled (`call_later`, `call_at`, timeouts).

    asyncio keeps them in a heap; uvloop keeps them in libuv, where only its timer objects
    (one per armed timer, freed in the loop iteration it fires or is cancelled in) can be
    counted. Walking the collector's objects skips the frozen start-up heap: it costs little.
    """
    loop = _running_loop()
    if loop is None:
        return float("nan")
    scheduled = getattr(loop, "_scheduled", None)
    if scheduled is not None:
        return float(sum(1 for handle in scheduled if not handle.cancelled()))
    if _UV_TIMER is not None:
        return float(sum(1 for item in gc.get_objects() if type(item) is _UV_TIMER))
    return float("nan")
