"""What the ASGI layers in front of the app (`create_asgi_app`) and the error format share:
the path as routing will see it, and a JSON answer sent without the app."""

from __future__ import annotations

import posixpath
import re

import msgspec
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Scope, Send

from gateway.envelope import ErrorDetail, ErrorEnvelope

_SLASHES = re.compile("/{2,}")


def normalised_path(scope: Scope) -> str:
    return normalise(scope["path"])


def normalise(path: str) -> str:
    """The path as routing sees it: runs of slashes as one, `.` and `..` resolved, no
    trailing slash (worked out only for a path that needs it: every request asks)."""
    path = path or "/"
    if "//" not in path and "/." not in path and (path == "/" or not path.endswith("/")):
        return path
    return posixpath.normpath(_SLASHES.sub("/", path))


def error_envelope(code: int, message: str) -> bytes:
    return msgspec.json.encode(ErrorEnvelope(errors=[ErrorDetail(code, message)]))


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """The whole answer; a non-empty body is JSON."""
    fields = [*(headers or []), (b"content-length", str(len(body)).encode())]
    if body:
        fields.append((b"content-type", b"application/json"))
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=fields))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))
