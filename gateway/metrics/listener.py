"""`/metrics` on a port of its own: per-model traffic and token totals (account ids too, with
per-account metrics on) are the operator's, not every API client's.

The server listens on both ports with one app; this middleware answers `/metrics` only on
the metrics port, and only `/metrics` there (404 in the envelope otherwise).
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.asgi_edge import error_envelope, normalised_path, respond
from gateway.error_codes import ErrorCode

METRICS_PATH = "/metrics"
_NOT_HERE = error_envelope(ErrorCode.NOT_FOUND, "Not Found")


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
                await respond(send, 404, _NOT_HERE)
                return
        await self._app(scope, receive, send)
