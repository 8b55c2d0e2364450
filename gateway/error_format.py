"""The format an error is answered in, chosen by the request's path: OpenAI's under its base
URLs, the Cloudflare envelope everywhere else.

Chosen by path rather than by route, because the errors that matter most to a client (an
unknown path such as `/v1/responses`, a wrong method, a connection-level refusal) have no
route to carry a format.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec
from litestar import Response

from gateway import errors
from gateway.asgi_edge import normalise, normalised_path
from gateway.errors import AnyRequest, ApiError
from gateway.openai_api import errors as openai_errors
from gateway.openai_api.base_urls import is_openai_path


def error_response(request: AnyRequest, error: ApiError) -> Response[Any]:
    if is_openai_path(normalised_path(request.scope)):
        return openai_errors.error_response(error)
    return errors.error_response(error)


def error_body(raw_target: bytes, error: ApiError) -> bytes:
    """The JSON body of `error` for a request known only by its raw target (`/v1/x?y`): the
    answers the HTTP protocol writes before there is a request."""
    path = unquote(raw_target.partition(b"?")[0].decode("latin-1"))
    if is_openai_path(normalise(path)):
        return msgspec.json.encode(openai_errors.error_body(error))
    return msgspec.json.encode(error.envelope())


EXCEPTION_HANDLERS = errors.exception_handlers(error_response)
