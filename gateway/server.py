"""Run the app under uvicorn with production settings: uvloop, httptools with the bounds of
`gateway.http_protocol`, no access log, and `/metrics` on a port of its own."""

from __future__ import annotations

import signal
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from gateway.http_protocol import BoundedHttpToolsProtocol
from gateway.settings import get_settings


def uvicorn_config(
    host: str | None = None, port: int | None = None, workers: int = 1
) -> uvicorn.Config:
    server = get_settings().server
    return uvicorn.Config(
        "gateway.asgi:app",
        factory=True,
        host=host or server.host,
        port=port or server.port,
        workers=workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        access_log=False,
        timeout_keep_alive=max(1, round(server.keepalive_timeout_seconds)),
        timeout_graceful_shutdown=int(server.shutdown_grace_seconds),
        log_level="info",
    )


def listening_sockets(config: uvicorn.Config, metrics_port: int) -> list[socket.socket]:
    """The API's socket, and the metrics port's on the same host unless it is 0."""
    sockets = [config.bind_socket()]
    if metrics_port:
        # A Config applies its logging when made: without these it would turn the access
        # log back on.
        metrics = uvicorn.Config(
            config.app, host=config.host, port=metrics_port, log_config=None, access_log=False
        )
        sockets.append(metrics.bind_socket())
    return sockets


def serve(host: str | None = None, port: int | None = None, workers: int = 1) -> int:
    settings = get_settings()
    config = uvicorn_config(host, port, workers)
    sockets = listening_sockets(config, settings.server.metrics_port)
    if workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        # uvicorn re-raises the signal that stopped it once it has drained; a drained stop
        # on SIGTERM is a clean exit, so that re-raise ends the process with status 0.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.Server(config).run(sockets=sockets)
    return 0
