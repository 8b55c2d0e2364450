"""Counters behind the limits: in this process, or in Redis so that replicas share one budget.

Every check-and-update is atomic (a Lua script in Redis, no await in between in memory): two
requests racing for the last unit of a budget cannot both get it.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class LimitStore(Protocol):
    async def consume(self, key: str, amount: int, limit: int, ttl_seconds: float) -> int | None:
        """Add `amount` unless the total would pass `limit`: the new total, or None (refused)."""
        ...

    async def adjust(self, key: str, delta: int) -> None:
        """Correct a live counter (a reservation settled to what was used)."""
        ...

    async def seed(self, key: str, value: int, ttl_seconds: float) -> None:
        """Set a counter that does not exist yet (another replica may have set it first)."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def acquire(self, key: str, member: str, limit: int, lease_seconds: float) -> int | None:
        """Join a set of at most `limit` live members: the new size, or None (full)."""
        ...

    async def release(self, key: str, member: str) -> None: ...

    async def close(self) -> None: ...


class MemoryLimitStore:
    """One process's counters; windows expire by time, leases by their deadline."""

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, float]] = {}
        self._sets: dict[str, dict[str, float]] = {}

    def _live(self, key: str) -> int | None:
        entry = self._counters.get(key)
        if entry is None:
            return None
        if entry[1] <= time.time():
            del self._counters[key]
            return None
        return entry[0]

    async def consume(self, key: str, amount: int, limit: int, ttl_seconds: float) -> int | None:
        used = self._live(key)
        total = (used or 0) + amount
        if total > limit:
            return None
        expires = self._counters[key][1] if used is not None else time.time() + ttl_seconds
        self._counters[key] = (total, expires)
        if len(self._counters) > 10_000:
            self._sweep()
        return total

    async def adjust(self, key: str, delta: int) -> None:
        used = self._live(key)
        if used is not None:
            self._counters[key] = (max(0, used + delta), self._counters[key][1])

    async def seed(self, key: str, value: int, ttl_seconds: float) -> None:
        if self._live(key) is None:
            self._counters[key] = (value, time.time() + ttl_seconds)

    async def exists(self, key: str) -> bool:
        return self._live(key) is not None

    async def acquire(self, key: str, member: str, limit: int, lease_seconds: float) -> int | None:
        now = time.time()
        members = {m: d for m, d in self._sets.get(key, {}).items() if d > now}
        if len(members) >= limit:
            self._sets[key] = members
            return None
        members[member] = now + lease_seconds
        self._sets[key] = members
        return len(members)

    async def release(self, key: str, member: str) -> None:
        members = self._sets.get(key)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._sets[key]

    async def close(self) -> None:
        pass

    def _sweep(self) -> None:
        now = time.time()
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]


_CONSUME = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then return -1 end
used = redis.call('INCRBY', KEYS[1], amount)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return used
"""

_ADJUST = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local used = redis.call('INCRBY', KEYS[1], ARGV[1])
  if used < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
end
return 0
"""

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local size = redis.call('ZCARD', KEYS[1])
if size >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return size + 1
"""


class RedisLimitStore:
    """Shared counters; a replica that dies holding a stream lease loses it at its deadline."""

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._consume = self._redis.register_script(_CONSUME)
        self._adjust = self._redis.register_script(_ADJUST)
        self._acquire = self._redis.register_script(_ACQUIRE)

    async def consume(self, key: str, amount: int, limit: int, ttl_seconds: float) -> int | None:
        total = int(await self._consume([key], [amount, limit, max(1, int(ttl_seconds * 1000))]))
        return None if total < 0 else total

    async def adjust(self, key: str, delta: int) -> None:
        await self._adjust([key], [delta])

    async def seed(self, key: str, value: int, ttl_seconds: float) -> None:
        await self._redis.set(key, value, nx=True, px=max(1, int(ttl_seconds * 1000)))

    async def exists(self, key: str) -> bool:
        return bool(await self._redis.exists(key))

    async def acquire(self, key: str, member: str, limit: int, lease_seconds: float) -> int | None:
        now = time.time()
        size = int(
            await self._acquire(
                [key],
                [now, limit, now + lease_seconds, member, max(1, int(lease_seconds * 1000))],
            )
        )
        return None if size < 0 else size

    async def release(self, key: str, member: str) -> None:
        await self._redis.zrem(key, member)

    async def close(self) -> None:
        await self._redis.aclose()
