"""`/metrics`: the gateway's registry in Prometheus' text format."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.metrics.registry import GatewayMetrics


def metrics_handler(metrics: GatewayMetrics) -> HTTPRouteHandler:
    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def scrape() -> Response[bytes]:
        return Response(
            generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST, status_code=200
        )

    return scrape
