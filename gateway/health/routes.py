"""`/healthz`: the process answers. `/readyz`: the database and every model answer too (and
Redis, when limits live there).

A degradable check (Redis, when a replica may fall back to its own limits) that fails leaves
the replica serving: `/readyz` answers 200 with `status: degraded` and names it in `checks`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping

import msgspec
from litestar import Controller, Response, get

from gateway.envelope import ErrorDetail, ErrorEnvelope

ReadinessCheck = Callable[[], Awaitable[bool]]
logger = logging.getLogger("gateway")
NOT_READY = 7010
CHECK_TIMEOUT_SECONDS = 3.0


class Health(msgspec.Struct, frozen=True):
    status: str
    checks: dict[str, bool] = msgspec.field(default_factory=dict)


async def _passes(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # a failing dependency is a "no", not a 500
        logger.warning("readiness check failed: %s", error)
        return False


def health_controller(
    checks: Mapping[str, ReadinessCheck], degradable: Collection[str] = ()
) -> type[Controller]:
    class HealthController(Controller):
        tags = ["Health"]  # noqa: RUF012
        include_in_schema = True

        @get("/healthz", summary="Liveness: the process is up")
        async def healthz(self) -> Health:
            return Health(status="ok")

        @get("/readyz", summary="Readiness: the database and Triton's models answer")
        async def readyz(self) -> Response[Health | ErrorEnvelope]:
            names = list(checks)
            results = await asyncio.gather(*(_passes(checks[name]) for name in names))
            outcome = dict(zip(names, results, strict=True))
            failing = [name for name, passed in outcome.items() if not passed]
            if not failing:
                return Response(Health(status="ready", checks=outcome))
            if all(name in degradable for name in failing):
                return Response(Health(status="degraded", checks=outcome))
            failed = ", ".join(failing)
            return Response(
                ErrorEnvelope(errors=[ErrorDetail(NOT_READY, f"Not ready: {failed}")]),
                status_code=503,
            )

    return HealthController
