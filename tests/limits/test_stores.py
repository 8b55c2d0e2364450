"""The limit counters, in memory and in the real Redis: atomic, expiring, shared."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.limits.store import LimitStore, MemoryLimitStore, RedisLimitStore

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LimitStore]:
    made: LimitStore = (
        MemoryLimitStore() if request.param == "memory" else RedisLimitStore(REDIS_URL)
    )
    yield made
    await made.close()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_racing_consumers_never_pass_the_limit_together(store: LimitStore) -> None:
    name = key()
    results = await asyncio.gather(*(store.consume(name, 3, 30, 60) for _ in range(25)))
    assert sum(result is not None for result in results) == 10
    assert max(result or 0 for result in results) == 30


async def test_a_refused_consume_changes_nothing(store: LimitStore) -> None:
    name = key()
    await store.consume(name, 8, 10, 60)
    assert await store.consume(name, 3, 10, 60) is None
    assert await store.consume(name, 2, 10, 60) == 10


async def test_adjust_gives_back_part_of_a_reservation(store: LimitStore) -> None:
    name = key()
    await store.consume(name, 9, 10, 60)
    await store.adjust(name, -5)
    assert await store.consume(name, 6, 10, 60) == 10


async def test_a_window_expires_with_its_ttl(store: LimitStore) -> None:
    name = key()
    await store.consume(name, 10, 10, 0.2)
    await asyncio.sleep(0.3)
    assert await store.consume(name, 10, 10, 0.2) == 10


async def test_seed_does_not_overwrite_a_live_counter(store: LimitStore) -> None:
    name = key()
    await store.seed(name, 7, 60)
    await store.seed(name, 1, 60)
    assert await store.consume(name, 0, 100, 60) == 7


async def test_racing_stream_leases_never_pass_the_limit(store: LimitStore) -> None:
    name = key()
    results = await asyncio.gather(*(store.acquire(name, str(i), 4, 60) for i in range(12)))
    assert sum(result is not None for result in results) == 4


async def test_a_released_lease_frees_its_place(store: LimitStore) -> None:
    name = key()
    await store.acquire(name, "a", 1, 60)
    await store.release(name, "a")
    assert await store.acquire(name, "b", 1, 60) == 1


async def test_a_lease_of_a_dead_holder_expires(store: LimitStore) -> None:
    name = key()
    await store.acquire(name, "dead", 1, 0.2)
    await asyncio.sleep(0.3)
    assert await store.acquire(name, "alive", 1, 60) == 1
