"""`/metrics` on a port of its own: per-model traffic and token totals (account ids too, with
per-account metrics on) are the operator's, not every API client's.

The server listens on both ports with one app; this middleware answers `/metrics` only on
the metrics port, and only `/metrics` there (404 in the envelope otherwise).
"""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.cors import normalised_path
from gateway.envelope import ErrorDetail, ErrorEnvelope
from gateway.errors import NOT_FOUND

METRICS_PATH = "/metrics"
_NOT_HERE = msgspec.json.encode(ErrorEnvelope(errors=[ErrorDetail(NOT_FOUND, "Not Found")]))


class MetricsListener:
    """`metrics_port` 0: `/metrics` is served on the API port, like any route."""

    def __init__(self, app: ASGIApp, metrics_port: int) -> None:
        self._app = app
        self._metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and self._metrics_port:
            server = scope.get("server")
            on_metrics_port = server is not None and server[1] == self._metrics_port
            if on_metrics_port != (normalised_path(scope) == METRICS_PATH):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_NOT_HERE)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _NOT_HERE, "more_body": False})
                return
        await self._app(scope, receive, send)
