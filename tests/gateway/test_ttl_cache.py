"""The TTL cache behind token verification and account limits."""

from __future__ import annotations

import asyncio

import pytest

from gateway.ttl_cache import TtlCache


class CountingLoader:
    def __init__(self, value: str = "v", keep: float = 60.0, fail: bool = False) -> None:
        self.calls = 0
        self.value, self.keep, self.fail = value, keep, fail

    async def __call__(self) -> tuple[str, float]:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise LookupError("no such key")
        return self.value, self.keep


async def test_concurrent_misses_of_one_key_load_it_once() -> None:
    cache: TtlCache[str, str] = TtlCache()
    load = CountingLoader()
    values = await asyncio.gather(*(cache.get("k", load) for _ in range(50)))
    assert values == ["v"] * 50
    assert load.calls == 1


async def test_an_entry_is_loaded_again_once_it_expires() -> None:
    cache: TtlCache[str, str] = TtlCache()
    load = CountingLoader(keep=0.05)
    await cache.get("k", load)
    await asyncio.sleep(0.1)
    await cache.get("k", load)
    assert load.calls == 2


async def test_a_failed_load_reaches_every_waiter_and_is_not_kept() -> None:
    cache: TtlCache[str, str] = TtlCache()
    load = CountingLoader(fail=True)
    results = await asyncio.gather(
        *(cache.get("k", load) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, LookupError) for result in results)
    with pytest.raises(LookupError):
        await cache.get("k", load)
    assert load.calls == 2


async def test_forget_where_drops_matching_entries() -> None:
    cache: TtlCache[str, str] = TtlCache()
    await cache.get("a", CountingLoader("drop"))
    await cache.get("b", CountingLoader("keep"))
    cache.forget_where(lambda value: value == "drop")
    reload = CountingLoader("new")
    assert await cache.get("a", reload) == "new"
    assert await cache.get("b", reload) == "keep"
