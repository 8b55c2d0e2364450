"""Which pages may call what: cross-origin access to the account API, and the `Host` names
the admin API and the playground answer.

Tokens travel in `Authorization`, never in cookies, so no response is credentialed and `*`
is as safe as a list. Only the account API (`/client/v4/…`, `/v1/…`) answers other origins;
the admin API refuses them outright, and everything else (metrics, health, the playground)
sends no CORS headers. This wraps the whole app, not Litestar's route middleware, so that a
404 or 405 of the account API also reaches the page that asked.

Paths are compared as the router resolves them (`//admin/v1` is `/admin/v1`), and a page is
the gateway's own only if its origin has the request's scheme and host. A page on an
attacker's name that resolves to the gateway (DNS rebinding) sends its own name as `Host`
and `Origin`; `AllowedHosts` refuses it on the admin API and the playground.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from gateway.asgi_edge import error_envelope, normalised_path, respond
from gateway.error_codes import ErrorCode

ACCOUNT_API_PREFIXES = ("/client/v4/", "/v1/")
ADMIN_API_PREFIX = "/admin/"
OWN_HOST_PREFIXES = (ADMIN_API_PREFIX, "/playground")
"""What only the gateway's own names answer: the admin API, and the page that keeps a token."""
EXPOSED_HEADERS = b", ".join(
    [
        b"x-request-id",
        b"x-run-id",
        b"retry-after",
        b"x-should-retry",
        *(
            b"x-ratelimit-%s-%s" % (field, budget)
            for budget in (b"requests", b"tokens", b"monthly-tokens")
            for field in (b"limit", b"remaining", b"reset")
        ),
    ]
)
"""What scripts may read: the request's ids (the run's is its usage record's) and what a limit
says about retrying."""
PREFLIGHT_MAX_AGE_SECONDS = b"600"
_ADMIN_REFUSAL = error_envelope(
    ErrorCode.AUTHENTICATION, "The admin API does not answer cross-origin requests"
)
_HOST_REFUSAL = error_envelope(
    ErrorCode.HOST_NOT_ALLOWED,
    "This host name is not one the gateway answers for its admin API and playground "
    "(GATEWAY_ALLOWED_HOSTS)",
)


def _header(scope: HTTPScope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _is_own_origin(origin: str, scope: HTTPScope) -> bool:
    """Whether `Origin` is the scheme and host the request was sent to (the gateway's own
    pages)."""
    host = _header(scope, b"host")
    return host is not None and origin == f"{scope['scheme']}://{host.lower()}"


def _host_name(host: str) -> str:
    """`Host` without its port: `[::1]:8080` → `[::1]`, `example.com:443` → `example.com`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


class AllowedHosts:
    """ASGI middleware: the admin API and the playground answer only the `Host` names listed
    (`Settings.server.allowed_host_names`; `*` any), so a rebound name is refused."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]) -> None:
        self._app = app
        self._allowed = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and "*" not in self._allowed
            and normalised_path(scope).startswith(OWN_HOST_PREFIXES)
            and not self._is_allowed(scope)
        ):
            await respond(send, 400, _HOST_REFUSAL)
            return
        await self._app(scope, receive, send)

    def _is_allowed(self, scope: HTTPScope) -> bool:
        """One `Host`, and a listed one (a second `Host` could be read instead by another)."""
        hosts = [value for key, value in scope["headers"] if key == b"host"]
        return len(hosts) == 1 and _host_name(hosts[0].decode("latin-1")) in self._allowed


class CrossOriginPolicy:
    """ASGI middleware around the whole app; `allowed_origins` as `Settings.cors_origins`."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str]) -> None:
        self._app = app
        self._allowed = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or (origin := _header(scope, b"origin")) is None:
            await self._app(scope, receive, send)
            return
        origin = origin.lower()
        path = normalised_path(scope)
        if path.startswith(ADMIN_API_PREFIX) and not _is_own_origin(origin, scope):
            await respond(send, 403, _ADMIN_REFUSAL)
            return
        if not path.startswith(ACCOUNT_API_PREFIXES) or not (
            "*" in self._allowed or origin in self._allowed
        ):
            await self._app(scope, receive, send)
            return
        allow_origin = (
            [(b"access-control-allow-origin", b"*")]
            if "*" in self._allowed
            else [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
        )
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await respond(send, 204, b"", [*allow_origin, *self._preflight_headers(scope)])
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    *allow_origin,
                    (b"access-control-expose-headers", EXPOSED_HEADERS),
                ]
            await send(message)

        await self._app(scope, receive, send_with_cors)

    @staticmethod
    def _preflight_headers(scope: HTTPScope) -> list[tuple[bytes, bytes]]:
        """Any request header may be sent (the SDKs add their own, such as OpenAI's
        `x-stainless-*`); `Authorization` must be named, so the requested ones are echoed."""
        requested = _header(scope, b"access-control-request-headers") or ""
        names = [name.strip() for name in requested.split(",") if name.strip()]
        allowed = ", ".join(names) or "authorization, content-type"
        return [
            (b"access-control-allow-methods", b"GET, POST"),
            (b"access-control-allow-headers", allowed.encode()),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE_SECONDS),
        ]
