"""Every error leaves the gateway as an `ApiError`, with a status and a numeric code: in the
envelope, or under OpenAI's base URLs in OpenAI's format (`gateway.error_format`).

Their codes, statuses and OpenAI names are the registry's (`gateway.error_codes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from gateway.envelope import ErrorDetail, ErrorEnvelope
from gateway.error_codes import ErrorCode

AnyRequest = Request[Any, Any, Any]

logger = logging.getLogger("gateway")


class ApiError(Exception):
    """An error the client caused or must know about; rendered in the envelope."""

    def __init__(
        self,
        status_code: int,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.param = param
        """The request field at fault, where one is (OpenAI's errors name it)."""

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(errors=[ErrorDetail(self.code, self.message)])


def error_response(error: ApiError) -> Response[ErrorEnvelope]:
    return Response(error.envelope(), status_code=error.status_code, headers=error.headers)


def _api_error(_: AnyRequest, error: ApiError) -> ApiError:
    return error


def _validation_error(_: AnyRequest, error: ValidationException) -> ApiError:
    """JSON that is not well formed never gets here (`gateway.request_body` refuses it): a
    failed validation is bad input, whatever its wording or the URL it names."""
    details = (
        [item for item in error.extra if isinstance(item, dict)]
        if isinstance(error.extra, list)
        else []
    )
    described = "; ".join(f"{item.get('key') or 'body'}: {item.get('message')}" for item in details)
    return ApiError(
        400,
        ErrorCode.BAD_INPUT,
        f"Bad input: {described or error.detail}",
        param=_field_at_fault(details),
    )


def _field_at_fault(details: list[dict[str, Any]]) -> str | None:
    """The field of msgspec's "… - at `$.messages[0].role`": `messages[0].role`."""
    for item in details:
        message = str(item.get("message", ""))
        if "- at `$." in message:
            return message.rsplit("- at `$.", 1)[1].rstrip("`")
        if item.get("key") and item.get("key") != "body":
            return str(item["key"])
    return None


SHOWN_PATH_CHARS = 200


def _http_error(request: AnyRequest, error: HTTPException) -> ApiError:
    status = error.status_code
    code = {
        400: ErrorCode.BAD_INPUT,
        401: ErrorCode.AUTHENTICATION,
        403: ErrorCode.AUTHENTICATION,
        404: ErrorCode.NOT_FOUND,
        405: ErrorCode.METHOD_NOT_ALLOWED,
        413: ErrorCode.TOO_LARGE,
    }.get(status, ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_INPUT)
    route = f"{request.method} {request.url.path[:SHOWN_PATH_CHARS]}"
    message = {
        404: f"Not found: no route for {route}",
        405: f"Method not allowed: {route} (allowed: {(error.headers or {}).get('allow', '')})",
        413: "Request is too large",
    }.get(status, str(error.detail))
    if status >= 500:
        logger.error("HTTP %s: %s", status, error.detail)
        message = "Internal error"
    return ApiError(status, code, message, dict(error.headers or {}))


def _unexpected_error(_: AnyRequest, error: Exception) -> ApiError:
    logger.exception("unhandled error", exc_info=error)
    return ApiError(HTTP_500_INTERNAL_SERVER_ERROR, ErrorCode.INTERNAL, "Internal error")


UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
"""Connection exceptions, insufficient resources, operator intervention (shutdown, restart)."""
NOT_ACCEPTING_CONNECTIONS = "55000"
UNSTORABLE_TEXT_SQLSTATES = ("22021", "22P05")
"""Character not in repertoire, untranslatable character: text from the request (a NUL
character) that PostgreSQL can neither store nor compare."""


def _sqlstate(error: Exception) -> str | None:
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    return None if sqlstate is None else str(sqlstate)


def _is_outage(error: Exception) -> bool:
    """A database that cannot be reached or will not serve, as opposed to a failed statement."""
    if isinstance(error, ConnectionError | OperationalError | InterfaceError):
        return True
    if isinstance(error, ProgrammingError | DataError | IntegrityError):
        return False
    sqlstate = _sqlstate(error)
    if sqlstate is None:
        return isinstance(getattr(error, "orig", None), OSError)
    return sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES or sqlstate == NOT_ACCEPTING_CONNECTIONS


def is_refused_data(error: Exception) -> bool:
    """The database is up but refuses the data (data exception or constraint violation)."""
    sqlstate = _sqlstate(error) or ""
    return isinstance(error, DataError | IntegrityError) or sqlstate[:2] in ("22", "23")


def _database_error(request: AnyRequest, error: Exception) -> ApiError:
    """The database is down or unreachable: a fast, retryable 503 rather than a 500.

    A statement that failed (bad SQL, data or constraint errors a service did not handle) is
    the gateway's own fault and stays a 500, except for text the database cannot hold, which
    can only have come from the request: a 400.
    """
    if _sqlstate(error) in UNSTORABLE_TEXT_SQLSTATES:
        return ApiError(
            400, ErrorCode.BAD_INPUT, "Bad input: text with a character the database refuses (NUL)"
        )
    if not _is_outage(error):
        return _unexpected_error(request, error)
    logger.warning("database unavailable: %s", error)
    return ApiError(
        503,
        ErrorCode.DATABASE_UNAVAILABLE,
        "The database is unavailable; retry shortly",
        {"Retry-After": "2"},
    )


def _recursion_error(request: AnyRequest, error: RecursionError) -> ApiError:
    """JSON nested deeper than the decoder goes is bad input; any other recursion is a bug."""
    if "deserializing" in str(error):
        return ApiError(400, ErrorCode.BAD_INPUT, "Bad input: JSON is nested too deeply")
    return _unexpected_error(request, error)


def undecodable_body(error: msgspec.DecodeError | UnicodeDecodeError) -> ApiError:
    """Malformed JSON is 3003; well-formed JSON with a number msgspec cannot hold is bad
    input (5006): told apart by type (`ValidationError` subclasses `DecodeError`)."""
    if isinstance(error, msgspec.ValidationError):
        message = str(error)
        return ApiError(
            400,
            ErrorCode.BAD_INPUT,
            f"Bad input: {message}",
            param=_field_at_fault([{"message": message}]),
        )
    return ApiError(400, ErrorCode.BODY_MISSING, f"Request body is not valid UTF-8 JSON: {error}")


def _decode_error(_: AnyRequest, error: msgspec.DecodeError | UnicodeDecodeError) -> ApiError:
    return undecodable_body(error)


_AS_API_ERROR: dict[type[Exception], Callable[[AnyRequest, Any], ApiError]] = {
    ApiError: _api_error,
    ValidationException: _validation_error,
    NotFoundException: _http_error,
    MethodNotAllowedException: _http_error,
    HTTPException: _http_error,
    msgspec.DecodeError: _decode_error,
    UnicodeDecodeError: _decode_error,
    RecursionError: _recursion_error,
    DBAPIError: _database_error,
    ConnectionError: _database_error,
    Exception: _unexpected_error,
}
"""Every exception the gateway answers, as the `ApiError` it is answered with."""


def exception_handlers(
    render: Callable[[AnyRequest, ApiError], Response[Any]],
) -> ExceptionHandlersMap:
    """Each exception as its `ApiError`, rendered in the format the request's API speaks."""

    def handler(
        as_api_error: Callable[[AnyRequest, Any], ApiError],
    ) -> Callable[[AnyRequest, Exception], Response[Any]]:
        return lambda request, error: render(request, as_api_error(request, error))

    return {kind: handler(as_api_error) for kind, as_api_error in _AS_API_ERROR.items()}
