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
from gateway.inference.request_ids import HEADER
from gateway.openai_api import errors as openai_errors
from gateway.openai_api.base_urls import is_openai_path
from gateway.usage.client_request_id import is_client_request_id


def error_response(request: AnyRequest, error: ApiError) -> Response[Any]:
    _echo_client_request_id(request, error)
    if is_openai_path(normalised_path(request.scope)):
        return openai_errors.error_response(error)
    return errors.error_response(error)


def _echo_client_request_id(request: AnyRequest, error: ApiError) -> None:
    """Every error echoes a usable `X-Request-Id`, also those refused before a run began
    (authentication, an unknown path); a run's own refusals already carry it."""
    client_id = request.headers.get(HEADER)
    if client_id is not None and HEADER not in error.headers and is_client_request_id(client_id):
        error.headers[HEADER] = client_id


def error_body(raw_target: bytes, error: ApiError) -> bytes:
    """The JSON body of `error` for a request known only by its raw target (`/v1/x?y`): the
    answers the HTTP protocol writes before there is a request."""
    path = unquote(raw_target.partition(b"?")[0].decode("latin-1"))
    if is_openai_path(normalise(path)):
        return msgspec.json.encode(openai_errors.error_body(error))
    return msgspec.json.encode(error.envelope())


EXCEPTION_HANDLERS = errors.exception_handlers(error_response)
