"""`uvicorn --factory gateway.asgi:app`: the app built from the environment at start-up."""

from __future__ import annotations

from litestar.types import ASGIApp

from gateway.app import create_asgi_app


def app() -> ASGIApp:
    return create_asgi_app()
