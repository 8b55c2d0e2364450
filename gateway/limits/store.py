"""Counters behind the limits: in this process, or in Redis so that replicas share one budget.

A store answers an admission and a settlement in one step each: in Redis one Lua script (one
round trip, atomic), in memory one call with no await inside. Two requests racing for the
last unit of a budget cannot both get it, and a refused admission changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.clock import SYSTEM_CLOCK, Clock

REDIS_OUTAGES = (RedisConnectionError, RedisTimeoutError)
"""What redis-py raises when Redis is down, stalled or goes away mid-command (its
ConnectionError is not the builtin one; BusyLoadingError, a Redis still loading, is one)."""
MUST_EXIST = -1
"""A budget's `seed` when its counter must be seeded by the caller if it does not exist."""
MAX_CARRIED_RELEASES = 100
MAX_UNRELEASED = 10_000


class StoreUnavailable(Exception):
    """The shared store did not answer (down, unreachable or too slow)."""


@dataclass(frozen=True)
class Budget:
    """Charge `amount` to the counter `key` unless its total would pass `limit`."""

    key: str
    amount: int
    limit: int
    ttl_seconds: float
    seed: int | None = None
    """None: a missing counter starts at 0. MUST_EXIST: the admission answers `unseeded`.
    Otherwise a missing counter starts at this value."""


@dataclass(frozen=True)
class Lease:
    """A place among at most `limit` live members of `key`, until `seconds` from now."""

    key: str
    member: str
    limit: int
    seconds: float


@dataclass(frozen=True)
class Standing:
    """Where one budget stands after an admission that reached it."""

    budget: Budget
    used: int
    """Its count before this admission."""
    passed: bool
    """False: this budget refused the admission."""

    @property
    def remaining(self) -> int:
        """What it has left, this admission's charge counted if the budget passed it."""
        charged = self.budget.amount if self.passed else 0
        return max(0, self.budget.limit - self.used - charged)


@dataclass(frozen=True)
class Reading:
    """A verdict read by the names its budgets were given (`Verdict.read`)."""

    standings: dict[str, Standing]
    """Every budget the store reached, in order: the refusing one is the last."""
    refused: str | None = None
    """The budget that refused."""
    lease_refused: bool = False
    unseeded: str | None = None
    """The MUST_EXIST budget whose counter does not exist; nothing was charged."""


@dataclass(frozen=True)
class Verdict:
    """`used`: each budget's count before this admission, up to the one that refused."""

    refused_at: int | None
    """Index of the refusing budget (len(budgets): the lease); None: admitted."""
    used: tuple[int, ...]
    lease_size: int = 0
    unseeded: int | None = None
    """Index of a MUST_EXIST budget whose counter does not exist; nothing was charged."""
    store: LimitStore | None = None
    """The store whose counters took the admission when it is not the store asked (a
    failover's fallback): settle it there."""

    def read(self, budgets: Mapping[str, Budget]) -> Reading:
        """This verdict on `budgets` (the ones admitted, in their order), by their names."""
        names = list(budgets)
        if self.unseeded is not None:
            return Reading({}, unseeded=names[self.unseeded])
        standings = {
            name: Standing(budgets[name], used, passed=index != self.refused_at)
            for index, (name, used) in enumerate(zip(names, self.used, strict=False))
        }
        if self.refused_at is None:
            return Reading(standings)
        if self.refused_at == len(names):
            return Reading(standings, lease_refused=True)
        return Reading(standings, refused=names[self.refused_at])


@dataclass(frozen=True)
class Settlement:
    """Add `delta` to each of `keys` that still exists (never below 0); release `lease`."""

    keys: tuple[str, ...]
    delta: int
    lease: tuple[str, str] | None


class LimitStore(Protocol):
    async def admit(self, budgets: Sequence[Budget], lease: Lease | None) -> Verdict:
        """Charge every budget and take the lease, or (one refuses) change nothing."""
        ...

    async def settle(self, settlement: Settlement) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryLimitStore:
    """One process's counters; windows expire by time, leases by their deadline."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._counters: dict[str, tuple[int, float]] = {}
        self._sets: dict[str, dict[str, float]] = {}

    def _live(self, key: str) -> int | None:
        entry = self._counters.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock.now():
            del self._counters[key]
            return None
        return entry[0]

    async def admit(self, budgets: Sequence[Budget], lease: Lease | None) -> Verdict:
        now = self._clock.now()
        used: list[int] = []
        for index, budget in enumerate(budgets):
            value = self._live(budget.key)
            if value is None:
                if budget.seed == MUST_EXIST:
                    return Verdict(None, (), unseeded=index)
                if budget.seed is not None:
                    self._counters[budget.key] = (budget.seed, now + budget.ttl_seconds)
                    value = budget.seed
            used.append(value or 0)
            if used[-1] + budget.amount > budget.limit:
                return Verdict(index, tuple(used))
        members: dict[str, float] = {}
        if lease is not None:
            members = {m: d for m, d in self._sets.get(lease.key, {}).items() if d > now}
            self._sets[lease.key] = members
            if len(members) >= lease.limit:
                return Verdict(len(budgets), tuple(used))
            members[lease.member] = now + lease.seconds
        for budget, before in zip(budgets, used, strict=True):
            live = self._counters.get(budget.key)
            expires = live[1] if live is not None else now + budget.ttl_seconds
            self._counters[budget.key] = (before + budget.amount, expires)
        if len(self._counters) > 10_000:
            self._sweep(now)
        return Verdict(None, tuple(used), lease_size=len(members))

    async def settle(self, settlement: Settlement) -> None:
        for key in settlement.keys:
            value = self._live(key)
            if value is not None:
                self._counters[key] = (max(0, value + settlement.delta), self._counters[key][1])
        if settlement.lease is not None:
            key, member = settlement.lease
            members = self._sets.get(key)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self._sets[key]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]


_RELEASE_CARRIED = """
local carried = tonumber(ARGV[1])
for i = 1, carried do
  redis.call('ZREM', KEYS[#KEYS - carried + i], ARGV[#ARGV - carried + i])
end
"""
"""Both scripts first release leases whose settlement could not reach Redis: the last
`carried` keys and arguments."""

_ADMIT = (
    _RELEASE_CARRIED
    + """
local n = tonumber(ARGV[2])
local leased = ARGV[3] == '1'
local used = {}
for i = 1, n do
  local at = 4 + 4 * (i - 1)
  local value = redis.call('GET', KEYS[i])
  if not value then
    local seed = tonumber(ARGV[at + 3])
    if seed == -1 then return {2, i - 1} end
    if seed ~= nil then
      redis.call('SET', KEYS[i], seed, 'PX', ARGV[at + 2], 'NX')
      value = seed
    end
  end
  used[i] = tonumber(value or '0')
  if used[i] + tonumber(ARGV[at]) > tonumber(ARGV[at + 1]) then
    return {1, i - 1, unpack(used)}
  end
end
local size = 0
if leased then
  local at = 4 + 4 * n
  local key = KEYS[n + 1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[at])
  size = redis.call('ZCARD', key)
  if size >= tonumber(ARGV[at + 1]) then return {1, n, unpack(used)} end
  redis.call('ZADD', key, ARGV[at + 2], ARGV[at + 3])
  redis.call('PEXPIRE', key, ARGV[at + 4])
  size = size + 1
end
for i = 1, n do
  local at = 4 + 4 * (i - 1)
  redis.call('INCRBY', KEYS[i], ARGV[at])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[at + 2]) end
end
return {0, size, unpack(used)}
"""
)

_SETTLE = (
    _RELEASE_CARRIED
    + """
local n = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], ARGV[3]) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[n + 1], ARGV[4]) end
return 0
"""
)


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisLimitStore:
    """Shared counters; a replica that dies holding a stream lease loses it at its deadline.

    A settlement that cannot reach Redis loses its token refund (the counters stay charged
    with the reservation: per-minute ones expire within a minute, the monthly one is seeded
    again from usage records if Redis lost it), but not its lease release: the next script
    this replica runs carries it, so a short outage does not hold stream slots for an hour.
    """

    def __init__(self, redis: Redis, clock: Clock = SYSTEM_CLOCK) -> None:
        self._redis = redis
        self._clock = clock
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)
        self._unreleased: dict[tuple[str, str], None] = {}

    async def admit(self, budgets: Sequence[Budget], lease: Lease | None) -> Verdict:
        keys = [budget.key for budget in budgets]
        args: list[str | int | float] = [len(budgets), 1 if lease else 0]
        for budget in budgets:
            seed = "" if budget.seed is None else budget.seed
            args += [budget.amount, budget.limit, _millis(budget.ttl_seconds), seed]
        if lease is not None:
            now = self._clock.now()
            keys.append(lease.key)
            args += [now, lease.limit, now + lease.seconds, lease.member, _millis(lease.seconds)]
        reply = await self._run(self._admit, keys, args)
        status, index, *used = (int(value) for value in reply)
        if status == 2:
            return Verdict(None, (), unseeded=index)
        if status == 1:
            return Verdict(index, tuple(used))
        return Verdict(None, tuple(used), lease_size=index)

    async def settle(self, settlement: Settlement) -> None:
        keys = list(settlement.keys)
        member = ""
        if settlement.lease is not None:
            keys.append(settlement.lease[0])
            member = settlement.lease[1]
        try:
            await self._run(self._settle, keys, [len(settlement.keys), settlement.delta, member])
        except StoreUnavailable:
            if settlement.lease is not None:
                self._unreleased[settlement.lease] = None
                while len(self._unreleased) > MAX_UNRELEASED:  # they expire by themselves
                    del self._unreleased[next(iter(self._unreleased))]
            raise

    async def _run(
        self, script: AsyncScript, keys: list[str], args: list[str | int | float]
    ) -> list[int]:
        carried = list(self._unreleased)[:MAX_CARRIED_RELEASES]
        keys = keys + [key for key, _ in carried]
        args = [len(carried), *args, *(member for _, member in carried)]
        try:
            reply = await script(keys, args)
        except REDIS_OUTAGES as error:
            raise StoreUnavailable(f"Redis: {error}") from error
        for lease in carried:
            self._unreleased.pop(lease, None)
        return reply if isinstance(reply, list) else [int(reply)]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except REDIS_OUTAGES as error:
            raise StoreUnavailable(f"Redis: {error}") from error

    async def close(self) -> None:
        await self._redis.aclose()
