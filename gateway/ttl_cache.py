"""A small async cache with a time to live per entry and one load per key at a time.

Many requests that miss the same key together (a burst from one account after a restart)
wait for one load instead of each asking the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[K, tuple[V, float]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}
        self._max_entries = max_entries

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def forget_where(self, predicate: Callable[[V], bool]) -> None:
        for key in [k for k, (value, _) in self._entries.items() if predicate(value)]:
            del self._entries[key]

    async def get(self, key: K, load: Callable[[], Awaitable[tuple[V, float]]]) -> V:
        """The cached value, or `load()`'s (value, seconds to keep it); errors are not kept."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value, keep_seconds = await load()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._loading[key]
        future.set_result(value)
        if keep_seconds > 0:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (value, time.monotonic() + keep_seconds)
        return value
