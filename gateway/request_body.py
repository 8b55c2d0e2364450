"""Checks on a request's raw body that no decoder should be trusted to report the same way."""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway.errors import BODY_MISSING, ApiError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def refuse_a_body_that_is_not_utf8(request: Request[Any, Any, Any]) -> None:
    """JSON is UTF-8 (RFC 8259): a body that is not is refused as not JSON (3003) by the
    gateway itself, since decoders word (and classify) the fault differently by version.
    The body is read once here and cached on the request for the handler's decoding."""
    if request.method not in BODY_METHODS:
        return
    body = await request.body()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400,
            BODY_MISSING,
            f"Request body is not valid UTF-8 JSON: invalid byte at position {error.start}",
        ) from None
