"""The operators' admin API is guarded by one bearer token from the settings."""

from __future__ import annotations

import secrets

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.envelope import error_responses
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.tokens.throttle import AuthenticationThrottle

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
    """Checks `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>` in constant time; failures are
    counted and throttled per client address like the account API's."""

    def __init__(self, admin_token: str | None, throttle: AuthenticationThrottle) -> None:
        self._expected = admin_token.encode() if admin_token else None
        self._throttle = throttle

    def __deepcopy__(self, memo: dict[int, object]) -> AdminGuard:
        """Litestar copies a router when it registers it; the throttle's counts are shared
        state, so the copy is this guard itself."""
        return self

    def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        if self._expected is None:
            raise ApiError(
                401, ErrorCode.AUTHENTICATION, "The admin API is disabled: set GATEWAY_ADMIN_TOKEN"
            )
        address = connection.client.host if connection.client else None
        self._throttle.check(address)
        presented = bearer_token(connection.headers.get("authorization"))
        if presented is None:
            self._throttle.failed(address, "admin_token")
            raise ApiError(
                401,
                ErrorCode.AUTHENTICATION,
                "Missing admin token: send Authorization: Bearer <token>",
            )
        if not secrets.compare_digest(presented.encode(), self._expected):
            self._throttle.failed(address, "admin_token")
            raise ApiError(401, ErrorCode.AUTHENTICATION, "Invalid admin token")
