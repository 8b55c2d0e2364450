"""The limit counters, in memory and in a real Redis: atomic, expiring, shared, and failing
fast (as StoreUnavailable) when Redis is not there."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.limits.store import (
    MUST_EXIST,
    Budget,
    Lease,
    LimitStore,
    MemoryLimitStore,
    RedisLimitStore,
    Settlement,
    StoreUnavailable,
)
from gateway.redis_client import redis_client
from gateway.settings import RedisSettings
from tests.redis_server import RedisServer


def redis_store(server: RedisServer, settings: RedisSettings | None = None) -> RedisLimitStore:
    return RedisLimitStore(redis_client(server.url, settings or RedisSettings()))


RACING = RedisSettings(connect_timeout_seconds=10, socket_timeout_seconds=10)
"""Dozens of connections open at once on a busy machine: a race, not a timeout test."""


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[LimitStore]:
    made: LimitStore = (
        MemoryLimitStore() if request.param == "memory" else redis_store(redis_server)
    )
    yield made
    await made.close()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def budget(name: str, amount: int, limit: int, ttl: float = 60, seed: int | None = None) -> Budget:
    return Budget(name, amount, limit, ttl, seed)


async def count(store: LimitStore, name: str) -> int:
    """A counter's value, read through an admission that charges nothing."""
    return (await store.admit([budget(name, 0, 2**62)], None)).used[0]


async def test_racing_admissions_from_many_clients_never_pass_the_limit_together(
    redis_server: RedisServer,
) -> None:
    """Eight clients (eight replicas' connection pools), 80 admissions at once: a store
    that read and then wrote in two steps lets more than ten of them through."""
    clients = [redis_store(redis_server, RACING) for _ in range(8)]
    name = key()
    try:
        verdicts = await asyncio.gather(
            *(c.admit([budget(name, 3, 30)], None) for c in clients for _ in range(10))
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    assert sum(v.refused_at is None for v in verdicts) == 10
    assert int(redis_server.client().get(name) or 0) == 30


async def test_racing_leases_from_many_clients_never_pass_the_limit(
    redis_server: RedisServer,
) -> None:
    clients = [redis_store(redis_server, RACING) for _ in range(6)]
    name = key()
    try:
        verdicts = await asyncio.gather(
            *(
                c.admit([], Lease(name, f"{n}-{i}", 4, 60))
                for n, c in enumerate(clients)
                for i in range(4)
            )
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    assert sum(v.refused_at is None for v in verdicts) == 4


def test_a_memory_admission_never_yields_to_another_task() -> None:
    """The memory store is atomic because an admission never suspends: nothing can run
    between its read and its write. An await that suspends inside it fails this test."""
    store = MemoryLimitStore()
    admission = store.admit([budget(key(), 1, 10)], Lease(key(), "a", 1, 60))
    with pytest.raises(StopIteration) as finished:
        admission.send(None)
    assert finished.value.value.refused_at is None


async def test_a_refused_admission_charges_no_budget(store: LimitStore) -> None:
    minute, month = key(), key()
    await store.admit([budget(month, 8, 10)], None)
    verdict = await store.admit([budget(minute, 5, 100), budget(month, 3, 10)], None)
    assert verdict.refused_at == 1
    assert verdict.used == (0, 8)
    assert await count(store, minute) == 0
    assert await count(store, month) == 8


async def test_a_full_lease_charges_no_budget(store: LimitStore) -> None:
    minute, streams = key(), key()
    await store.admit([], Lease(streams, "first", 1, 60))
    verdict = await store.admit([budget(minute, 5, 100)], Lease(streams, "second", 1, 60))
    assert verdict.refused_at == 1
    assert await count(store, minute) == 0


async def test_an_admission_reports_each_count_before_it(store: LimitStore) -> None:
    minute, month, streams = key(), key(), key()
    await store.admit([budget(minute, 4, 100), budget(month, 7, 100)], None)
    verdict = await store.admit(
        [budget(minute, 2, 100), budget(month, 2, 100)], Lease(streams, "a", 3, 60)
    )
    assert verdict.refused_at is None
    assert verdict.used == (4, 7)
    assert verdict.lease_size == 1


async def test_a_settlement_gives_back_part_of_a_reservation_never_below_zero(
    store: LimitStore,
) -> None:
    minute, month = key(), key()
    await store.admit([budget(minute, 9, 10), budget(month, 2, 10)], None)
    await store.settle(Settlement((minute, month), -5, None))
    assert await count(store, minute) == 4
    assert await count(store, month) == 0


async def test_a_settlement_does_not_create_a_missing_counter(store: LimitStore) -> None:
    name = key()
    await store.settle(Settlement((name,), 5, None))
    assert (await store.admit([budget(name, 0, 100, seed=MUST_EXIST)], None)).unseeded == 0


async def test_a_settlement_frees_its_lease(store: LimitStore) -> None:
    streams = key()
    await store.admit([], Lease(streams, "a", 1, 60))
    await store.settle(Settlement((), 0, (streams, "a")))
    assert (await store.admit([], Lease(streams, "b", 1, 60))).refused_at is None


async def test_a_window_expires_with_its_ttl(store: LimitStore) -> None:
    name = key()
    await store.admit([budget(name, 10, 10, ttl=0.2)], None)
    await asyncio.sleep(0.3)
    assert (await store.admit([budget(name, 10, 10, ttl=0.2)], None)).refused_at is None


async def test_a_counter_that_must_exist_asks_for_its_seed_and_charges_nothing(
    store: LimitStore,
) -> None:
    month, minute = key(), key()
    verdict = await store.admit(
        [budget(minute, 5, 100), budget(month, 5, 100, seed=MUST_EXIST)], None
    )
    assert verdict.unseeded == 1
    assert await count(store, minute) == 0


async def test_a_seed_starts_a_missing_counter_and_never_overwrites_a_live_one(
    store: LimitStore,
) -> None:
    month = key()
    assert (await store.admit([budget(month, 2, 100, seed=7)], None)).used == (7,)
    assert (await store.admit([budget(month, 2, 100, seed=1)], None)).used == (9,)


async def test_a_lease_of_a_dead_holder_expires(store: LimitStore) -> None:
    streams = key()
    await store.admit([], Lease(streams, "dead", 1, 0.2))
    await asyncio.sleep(0.3)
    assert (await store.admit([], Lease(streams, "alive", 1, 60))).refused_at is None


async def test_an_admission_and_a_settlement_are_one_round_trip_each(
    redis_server: RedisServer,
) -> None:
    store = redis_store(redis_server)
    budgets = [budget(key(), 10, 100), budget(key(), 10, 100, seed=0)]
    lease = Lease(key(), "a", 2, 60)
    try:
        await store.admit(budgets, lease)  # the first call loads the script
        await store.settle(Settlement(tuple(b.key for b in budgets), -4, (lease.key, "a")))
        with redis_server.round_trips() as admitted:
            await store.admit(budgets, lease)
        with redis_server.round_trips() as settled:
            await store.settle(Settlement(tuple(b.key for b in budgets), -4, (lease.key, "a")))
    finally:
        await store.close()
    assert admitted == ["evalsha"]
    assert settled == ["evalsha"]


async def test_a_killed_redis_is_store_unavailable_at_once(redis_server: RedisServer) -> None:
    store = redis_store(redis_server)
    await store.admit([budget(key(), 1, 10)], None)
    redis_server.kill()
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            await store.admit([budget(key(), 1, 10)], None)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()
    assert time.monotonic() - started < 0.5


async def test_a_stalled_redis_is_store_unavailable_after_the_socket_timeout(
    redis_server: RedisServer,
) -> None:
    store = RedisLimitStore(
        redis_client(redis_server.url, RedisSettings(socket_timeout_seconds=0.3))
    )
    await store.admit([budget(key(), 1, 10)], None)
    try:
        with redis_server.stalled():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.admit([budget(key(), 1, 10)], None)
            waited = time.monotonic() - started
    finally:
        await store.close()
    assert 0.25 < waited < 1.0


async def test_a_restarted_redis_serves_the_same_client_again(redis_server: RedisServer) -> None:
    store = redis_store(redis_server)
    try:
        await store.admit([budget(key(), 1, 10)], None)
        redis_server.kill()
        with pytest.raises(StoreUnavailable):
            await store.admit([budget(key(), 1, 10)], None)
        redis_server.start()
        verdict = await store.admit([budget(key(), 1, 10)], None)
    finally:
        await store.close()
    assert verdict.refused_at is None


async def test_a_lease_whose_release_missed_redis_is_released_by_the_next_script(
    redis_server: RedisServer,
) -> None:
    """Redis lost the connection, not its data: without the carried release the lease
    would hold its stream slot for an hour."""
    store = redis_store(redis_server)
    streams = key()
    try:
        await store.admit([], Lease(streams, "a", 1, 3600))
        with redis_server.stalled(), pytest.raises(StoreUnavailable):
            await store.settle(Settlement((), 0, (streams, "a")))
        assert redis_server.client().zcard(streams) == 1
        await store.admit([budget(key(), 1, 10)], None)
    finally:
        await store.close()
    assert redis_server.client().zcard(streams) == 0
