"""Every error the gateway answers with, in one registry: its status, its numeric code (Workers
AI's where it has one, the gateway's own otherwise), when it happens, and how OpenAI's format
names it. The envelope carries the code; under OpenAI's base URLs `gateway.openai_api.errors`
reads the type and code from here. The error table of docs/api/errors.md is `markdown_table()`,
checked by a test, so the documentation cannot drift from what is answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ErrorCode(IntEnum):
    INTERNAL = 1000
    DATABASE_UNAVAILABLE = 1001
    LIMITS_UNAVAILABLE = 1002
    OVERLOADED = 1003
    BODY_MISSING = 3003
    TOO_LARGE = 3006
    QUOTA_EXCEEDED = 3036
    RATE_LIMITED = 3040
    INVALID_MODEL = 3042
    BACKEND_UNAVAILABLE = 3045
    BACKEND_FAILED = 3046
    USAGE_BACKLOG_FULL = 3047
    CLIENT_CLOSED_REQUEST = 3048
    UNSUPPORTED_MEDIA_TYPE = 3049
    BAD_INPUT = 5006
    CONTEXT_WINDOW_EXCEEDED = 5021
    METHOD_NOT_ALLOWED = 7001
    NOT_FOUND = 7003
    CONFLICT = 7004
    HOST_NOT_ALLOWED = 7005
    NOT_READY = 7010
    AUTHENTICATION = 10000
    AUTHENTICATION_THROTTLED = 10001


INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"
SERVICE_UNAVAILABLE = "service_unavailable"


@dataclass(frozen=True)
class ErrorKind:
    status: int
    code: ErrorCode
    when: str
    openai_type: str = INVALID_REQUEST
    openai_code: str | None = None


_UNAVAILABLE = {"openai_type": SERVICE_UNAVAILABLE, "openai_code": "service_unavailable"}
_RATE_LIMITED = {"openai_type": "rate_limit_error", "openai_code": "rate_limit_exceeded"}

REGISTRY: tuple[ErrorKind, ...] = (
    ErrorKind(
        400,
        ErrorCode.BODY_MISSING,
        "body missing, not (UTF-8) JSON, or with a key twice in one object (names the key)",
    ),
    ErrorKind(
        400,
        ErrorCode.BAD_INPUT,
        "bad input: schema, ranges (a non-zero sampling value that float32, as the backend "
        "takes it, holds as 0 too), unknown field, chat roles, `max_tokens` over the model's "
        "output limit (says by how much), a bad `X-Request-Id`; more than "
        "`GATEWAY_MAX_MESSAGES` messages or `GATEWAY_MAX_PROMPT_CHARACTERS` characters (says "
        "which), refused before any rendering; or a chat template still rendering the "
        "messages after 2 s (the render is stopped)",
    ),
    ErrorKind(
        400,
        ErrorCode.CONTEXT_WINDOW_EXCEEDED,
        "prompt over the model's context length (says by how much; see below for prompts "
        "refused by their length); an embeddings input over the model's tokens per input "
        "(names its index: `text[1]`, `input[1]`)",
        openai_code="context_length_exceeded",
    ),
    ErrorKind(
        400,
        ErrorCode.HOST_NOT_ALLOWED,
        "`Host` not allowed for the admin API or the playground",
    ),
    ErrorKind(
        401,
        ErrorCode.AUTHENTICATION,
        "missing, malformed, unknown, revoked or expired token",
        openai_code="invalid_api_key",
    ),
    ErrorKind(
        403,
        ErrorCode.AUTHENTICATION,
        "the token belongs to another account; or a browser page (an `Origin` header) calls the "
        "admin API",
        openai_type="permission_error",
    ),
    ErrorKind(
        404,
        ErrorCode.INVALID_MODEL,
        "no such model",
        openai_code="model_not_found",
    ),
    ErrorKind(
        404,
        ErrorCode.NOT_FOUND,
        "no such route (`Not found: no route for GET /…`) or resource",
    ),
    ErrorKind(
        405,
        ErrorCode.METHOD_NOT_ALLOWED,
        "a method the route does not take (names the allowed ones; `Allow`)",
    ),
    ErrorKind(
        408,
        ErrorCode.BAD_INPUT,
        "the request's head (`GATEWAY_HEADER_TIMEOUT_SECONDS`) or body "
        "(`GATEWAY_BODY_TIMEOUT_SECONDS`) came too slowly",
    ),
    ErrorKind(409, ErrorCode.CONFLICT, "conflict (a duplicate name)"),
    ErrorKind(
        413,
        ErrorCode.TOO_LARGE,
        "body over `GATEWAY_MAX_BODY_BYTES`",
        openai_code="request_too_large",
    ),
    ErrorKind(
        415,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        "body declared with a `Content-Type` other than `application/json` (or "
        "`application/…+json`); a body with no `Content-Type` is read as JSON",
        openai_code="unsupported_media_type",
    ),
    ErrorKind(
        429,
        ErrorCode.RATE_LIMITED,
        "requests per minute, tokens per minute or concurrent requests over the account's "
        "limit (`Retry-After`)",
        **_RATE_LIMITED,
    ),
    ErrorKind(
        429,
        ErrorCode.QUOTA_EXCEEDED,
        "the account's monthly token quota is exhausted (says how much is used and when it "
        "resets; under OpenAI's base URLs also `x-should-retry: false`)",
        openai_type="insufficient_quota",
        openai_code="insufficient_quota",
    ),
    ErrorKind(
        429,
        ErrorCode.AUTHENTICATION_THROTTLED,
        "too many failed authentications from this address this minute (`Retry-After`)",
        **_RATE_LIMITED,
    ),
    ErrorKind(
        431,
        ErrorCode.BAD_INPUT,
        "request line and headers over `GATEWAY_MAX_HEADER_BYTES`, or more than "
        "`GATEWAY_MAX_HEADER_COUNT` headers",
    ),
    ErrorKind(
        499,
        ErrorCode.CLIENT_CLOSED_REQUEST,
        "the client left before its whole answer was ready; the run was cancelled (nobody "
        "receives this answer: it is what the usage record and the logs say)",
        openai_code="client_closed_request",
    ),
    ErrorKind(
        500,
        ErrorCode.INTERNAL,
        "internal error (logged, never detailed to the client)",
        openai_type=SERVER_ERROR,
    ),
    ErrorKind(
        502,
        ErrorCode.BACKEND_FAILED,
        "the backend failed the request",
        openai_type=SERVER_ERROR,
        openai_code="backend_error",
    ),
    ErrorKind(
        503,
        ErrorCode.BACKEND_UNAVAILABLE,
        "the backend is unreachable or the model is not ready",
        openai_type=SERVICE_UNAVAILABLE,
        openai_code="backend_unavailable",
    ),
    ErrorKind(
        503,
        ErrorCode.USAGE_BACKLOG_FULL,
        "usage cannot be recorded (the usage backlog is full: the database is behind); "
        "`Retry-After`",
        **_UNAVAILABLE,
    ),
    ErrorKind(
        503,
        ErrorCode.DATABASE_UNAVAILABLE,
        "the database is unavailable; `Retry-After`",
        **_UNAVAILABLE,
    ),
    ErrorKind(
        503,
        ErrorCode.LIMITS_UNAVAILABLE,
        "the limits' store (Redis) is unreachable; `Retry-After`",
        **_UNAVAILABLE,
    ),
    ErrorKind(
        503,
        ErrorCode.OVERLOADED,
        "the process holds `GATEWAY_MAX_CONNECTIONS` connections; `Retry-After: 1`",
        **_UNAVAILABLE,
    ),
    ErrorKind(
        503,
        ErrorCode.NOT_READY,
        "`/readyz` only: a readiness check failed (the message names the checks)",
        **_UNAVAILABLE,
    ),
)

_BY_STATUS_AND_CODE: dict[tuple[int, int], ErrorKind] = {
    (kind.status, kind.code): kind for kind in REGISTRY
}


def registered(status: int, code: int) -> ErrorKind | None:
    return _BY_STATUS_AND_CODE.get((status, code))


def openai_names(status: int, code: int) -> tuple[str, str | None]:
    """OpenAI's `type` and `code` of an error; a status no entry lists (an HTTP error that
    Litestar raised) gets its class of status's type, and no code."""
    kind = registered(status, code)
    if kind is None:
        return (SERVER_ERROR if status >= 500 else INVALID_REQUEST), None
    return kind.openai_type, kind.openai_code


def markdown_table() -> str:
    """The table docs/api/errors.md shows: one row per entry, in the registry's order."""
    rows = [
        "| status | code | OpenAI `type` / `code` | when |",
        "|---|---|---|---|",
    ]
    for kind in REGISTRY:
        openai = f"`{kind.openai_type}`" + (f" / `{kind.openai_code}`" if kind.openai_code else "")
        rows.append(f"| {kind.status} | {int(kind.code)} | {openai} | {kind.when} |")
    return "\n".join(rows)
