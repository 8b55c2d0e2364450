"""OpenAI's error format, `{"error": {"message", "type", "param", "code"}}`, for every error
the gateway answers under OpenAI's base URLs, served paths or not (the SDK turns the status
into its typed exception).

The type and code of each error are the registry's (`gateway.error_codes`).

A monthly quota's 429 carries `x-should-retry: false`: its `Retry-After` is the month's end,
and the SDK would otherwise retry it.
"""

from __future__ import annotations

from typing import Any

from litestar import Response

from gateway.error_codes import ErrorCode, openai_names
from gateway.errors import ApiError
from gateway.openai_api.schemas import ErrorBody, ErrorDetail


def error_body(error: ApiError) -> ErrorBody:
    kind, code = openai_names(error.status_code, error.code)
    return ErrorBody(ErrorDetail(error.message, kind, error.param, code))


def error_response(error: ApiError) -> Response[Any]:
    headers = dict(error.headers)
    if error.code == ErrorCode.QUOTA_EXCEEDED:
        headers["x-should-retry"] = "false"
    return Response(error_body(error), status_code=error.status_code, headers=headers)
