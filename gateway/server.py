"""Run the app under uvicorn with production settings (uvloop, httptools, no access log)."""

from __future__ import annotations

import signal
import sys

import uvicorn

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
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=int(server.shutdown_grace_seconds),
        log_level="info",
    )


def serve(host: str | None = None, port: int | None = None, workers: int = 1) -> int:
    config = uvicorn_config(host, port, workers)
    if workers > 1:
        uvicorn.run(
            config.app, factory=True, host=config.host, port=config.port, workers=workers,
            loop="uvloop", http="httptools", access_log=False,
        )  # fmt: skip
    else:
        # uvicorn re-raises the signal that stopped it once it has drained; a drained stop
        # on SIGTERM is a clean exit, so that re-raise ends the process with status 0.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.Server(config).run()
    return 0
