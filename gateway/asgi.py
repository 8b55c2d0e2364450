"""`uvicorn --factory gateway.asgi:app`: the app built from the environment at start-up."""

from __future__ import annotations

from litestar import Litestar

from gateway.app import create_app


def app() -> Litestar:
    return create_app()
