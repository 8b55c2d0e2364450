"""`/readyz`'s verdict is computed at most once a second, however often it is asked."""

from __future__ import annotations

import asyncio

from gateway.health.routes import Readiness


class CountingCheck:
    """A readiness check (the interface the database and Triton checks implement) that
    counts how often it runs."""

    def __init__(self, passes: bool = True) -> None:
        self.calls = 0
        self.passes = passes

    async def __call__(self) -> bool:
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.passes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_probes_within_the_cache_time_share_one_round_of_checks() -> None:
    check = CountingCheck()
    readiness = Readiness({"database": check}, (), cache_seconds=1.0, clock=Clock())

    async def probe_many() -> list[int]:
        responses = await asyncio.gather(*(readiness.response() for _ in range(50)))
        return [response.status_code for response in responses]

    assert asyncio.run(probe_many()) == [200] * 50
    assert check.calls == 1


def test_the_checks_run_again_once_the_verdict_is_older_than_the_cache_time() -> None:
    check = CountingCheck()
    clock = Clock()
    readiness = Readiness({"database": check}, (), cache_seconds=1.0, clock=clock)

    async def probe_twice() -> list[int]:
        first = await readiness.response()
        check.passes = False
        clock.now += 1.5
        second = await readiness.response()
        return [first.status_code, second.status_code]

    assert asyncio.run(probe_twice()) == [200, 503]
    assert check.calls == 2
