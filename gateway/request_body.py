"""Checks on a request's raw body that no decoder should be trusted to report the same way.

A body is JSON (RFC 8259): declared as JSON when its type is declared at all, UTF-8, well
formed, and with each key once per object. Decoders keep the last of a repeated key, so a
screening proxy that keeps the first and the gateway would act on two different requests.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread
import msgspec
from litestar import Request
from litestar.exceptions import SerializationException

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError, undecodable_body

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SCANNED_IN_A_THREAD_FROM = 64 * 1024
"""Bytes from which the duplicate-key scan leaves the event loop. Measured on 1 MiB bodies
(33,000 chat messages, 350,000 empty objects, objects nested 200 deep, one object of 90,000
keys): 15 to 25 ms, all of it a stall on the loop; in a thread, whose per-object callbacks
let the loop take the GIL each switch interval, the loop stalls 6 to 10 ms (16 ms for the
one big object, scanned in C without a callback). A 64 KiB body takes 0.7 ms, 1 KiB 10 µs.
(msgspec's own decode of those bodies, on the loop as before, takes 6 to 60 ms.)"""
_SCANNING = anyio.CapacityLimiter(1)
"""The scan holds the GIL but at its callbacks: a second scanning thread would only contend
with the loop for it."""
SHOWN_CHARS = 100


async def refuse_a_body_that_is_not_strict_json(request: Request[Any, Any, Any]) -> None:
    """Every body is refused here, before authentication and before any handler decodes it,
    unless it is strict JSON. The body is read and decoded once (by the handlers' own
    decoder, which caches it for them), so malformed JSON is told from a schema error by
    where it failed rather than by an error's wording."""
    if request.method not in BODY_METHODS:
        return
    body = await request.body()
    if not body:
        _refuse_a_missing_body(request)
        return
    _refuse_a_type_that_is_not_json(request.headers.get("content-type"))
    text = _utf8(body)
    try:
        await request.json()
    except SerializationException as error:
        cause = error.__cause__
        if isinstance(cause, msgspec.DecodeError):
            raise undecodable_body(cause) from None
        raise
    if len(body) < SCANNED_IN_A_THREAD_FROM:
        refuse_duplicate_keys(text)
    else:
        await anyio.to_thread.run_sync(refuse_duplicate_keys, text, limiter=_SCANNING)


def _refuse_a_missing_body(request: Request[Any, Any, Any]) -> None:
    """A route that takes a body got none: 3003, not the decoder's complaint about `data`."""
    data = request.route_handler.parsed_data_field
    if data is not None and not data.is_optional and not data.has_default:
        raise ApiError(
            400,
            ErrorCode.BODY_MISSING,
            "Request body is missing: send a JSON object (application/json)",
        )


def _is_json(content_type: str) -> bool:
    """`application/json` or any `application/…+json`, whatever its parameters."""
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _refuse_a_type_that_is_not_json(content_type: str | None) -> None:
    """A body declared as something else (`curl -d` declares a form) is refused rather than
    read as JSON; a body that declares no type is read as JSON, as simple clients send it."""
    if content_type is None or _is_json(content_type):
        return
    shown = repr(content_type[:SHOWN_CHARS])
    raise ApiError(
        415,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"Content-Type {shown} is not JSON: send the body as JSON with "
        "'Content-Type: application/json'",
    )


def _utf8(body: bytes) -> str:
    """JSON is UTF-8: decoders word (and classify) other bytes differently by version."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400,
            ErrorCode.BODY_MISSING,
            f"Request body is not valid UTF-8 JSON: invalid byte at position {error.start}",
        ) from None


def refuse_duplicate_keys(text: str) -> None:
    """`text`, JSON the handlers' decoder accepted, scanned for a key repeated in one object.

    json's C scanner hands each object's pairs to `_unique_keys` and keeps nothing (each
    object becomes None): no dict is built unless an object has two keys or more."""
    try:
        json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ApiError(400, ErrorCode.BAD_INPUT, "Bad input: JSON is nested too deeply") from None
    except ValueError as error:
        raise ApiError(
            400, ErrorCode.BODY_MISSING, f"Request body is not valid JSON: {error}"
        ) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) < 2 or len(dict(pairs)) == len(pairs):
        return
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            shown = repr(key[:SHOWN_CHARS]) + ("…" if len(key) > SHOWN_CHARS else "")
            raise ApiError(
                400,
                ErrorCode.BODY_MISSING,
                f"Request body is not acceptable JSON: the key {shown} appears twice in one "
                "object (keys must be unique)",
            )
        seen.add(key)
