"""The operators' admin API is guarded by one bearer token from the settings."""

from __future__ import annotations

import secrets

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.envelope import error_responses
from gateway.errors import AUTHENTICATION, ApiError

ADMIN_ERROR_RESPONSES = error_responses(
    {
        400: "Bad input",
        401: "Missing or wrong admin token",
        404: "No such account or token",
        409: "Conflict",
    }
)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class AdminGuard:
    """Checks `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>` in constant time."""

    def __init__(self, admin_token: str | None) -> None:
        self._expected = admin_token.encode() if admin_token else None

    def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        presented = bearer_token(connection.headers.get("authorization"))
        if self._expected is None:
            raise ApiError(
                401, AUTHENTICATION, "The admin API is disabled: set GATEWAY_ADMIN_TOKEN"
            )
        if presented is None:
            raise ApiError(
                401, AUTHENTICATION, "Missing admin token: send Authorization: Bearer <token>"
            )
        if not secrets.compare_digest(presented.encode(), self._expected):
            raise ApiError(401, AUTHENTICATION, "Invalid admin token")
