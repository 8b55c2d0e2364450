"""`/healthz`: the process answers. `/readyz`: the database and every model answer too (and
Redis, when limits live there).

A degradable check (Redis, when a replica may fall back to its own limits) that fails leaves
the replica serving: `/readyz` answers 200 with `status: degraded` and names it in `checks`.

`/readyz` is public (probes need no token) and each check is a database query and a Triton
call, so its verdict is kept for `READINESS_CACHE_SECONDS` and concurrent probes share one
round of checks: a client polling it costs the backends at most one round per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping

import msgspec
from litestar import Controller, Response, get

from gateway.envelope import ErrorDetail, ErrorEnvelope
from gateway.error_codes import ErrorCode

ReadinessCheck = Callable[[], Awaitable[bool]]
logger = logging.getLogger("gateway")
CHECK_TIMEOUT_SECONDS = 3.0
READINESS_CACHE_SECONDS = 1.0


class Health(msgspec.Struct, frozen=True):
    status: str
    checks: dict[str, bool] = msgspec.field(default_factory=dict)


async def _passes(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # a failing dependency is a "no", not a 500
        logger.warning("readiness check failed: %s", error)
        return False


class Readiness:
    """The checks' verdict, computed at most once per `cache_seconds`."""

    def __init__(
        self,
        checks: Mapping[str, ReadinessCheck],
        degradable: Collection[str],
        cache_seconds: float = READINESS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = checks
        self._degradable = degradable
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._verdict: tuple[float, Health | ErrorEnvelope] | None = None
        self._checking = asyncio.Lock()

    async def response(self) -> Response[Health | ErrorEnvelope]:
        async with self._checking:
            if self._verdict is None or self._verdict[0] <= self._clock():
                self._verdict = (self._clock() + self._cache_seconds, await self._check())
            verdict = self._verdict[1]
        return Response(verdict, status_code=503 if isinstance(verdict, ErrorEnvelope) else 200)

    async def _check(self) -> Health | ErrorEnvelope:
        names = list(self._checks)
        results = await asyncio.gather(*(_passes(self._checks[name]) for name in names))
        outcome = dict(zip(names, results, strict=True))
        failing = [name for name, passed in outcome.items() if not passed]
        if not failing:
            return Health(status="ready", checks=outcome)
        if all(name in self._degradable for name in failing):
            return Health(status="degraded", checks=outcome)
        return ErrorEnvelope(
            errors=[ErrorDetail(ErrorCode.NOT_READY, f"Not ready: {', '.join(failing)}")]
        )


def health_controller(
    checks: Mapping[str, ReadinessCheck], degradable: Collection[str] = ()
) -> type[Controller]:
    readiness = Readiness(checks, degradable)

    class HealthController(Controller):
        tags = ["Health"]  # noqa: RUF012
        include_in_schema = True

        @get("/healthz", summary="Liveness: the process is up")
        async def healthz(self) -> Health:
            return Health(status="ok")

        @get("/readyz", summary="Readiness: the database and Triton's models answer")
        async def readyz(self) -> Response[Health | ErrorEnvelope]:
            return await readiness.response()

    return HealthController
