"""A run's two ids: its own, minted by the gateway, and the client's `X-Request-Id`.

The run's id keys its usage record, its concurrency lease and the backend request that a
stop targets, so a client never chooses it: a replayed or another tenant's id can neither
overwrite a record nor stop another generation. The client's id is echoed and stored beside
the record, where the client can look it up.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import Provide

from gateway.inference.errors import invalid_input
from gateway.usage.client_request_id import FORM, is_client_request_id

ClientRequestId: TypeAlias = str | None
"""The client's `X-Request-Id`, checked; None when it sent none."""

HEADER = "x-request-id"


def provide_client_request_id(request: Request[Any, Any, Any]) -> str | None:
    """The client's id, or the 400 that names what a usable one is."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not is_client_request_id(value):
        raise invalid_input(f"X-Request-Id must be {FORM}", param="X-Request-Id")
    return value


CLIENT_REQUEST_ID = {"client_request_id": Provide(provide_client_request_id, sync_to_thread=False)}
"""The dependency of the routes that start runs (only theirs: elsewhere the name is free)."""


def request_id_headers(run_id: str, client_request_id: str | None) -> dict[str, str]:
    """`x-request-id` echoes the client's own id if it sent one, else it is the run's;
    `x-run-id` is always the run's (the usage record's key)."""
    return {HEADER: client_request_id or run_id, "x-run-id": run_id}
