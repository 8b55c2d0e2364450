"""OpenAI's error format, `{"error": {"message", "type", "param", "code"}}`, for every error
the gateway answers under OpenAI's base URLs, served paths or not (the SDK turns the status
into its typed exception).

| status | type | code |
|---|---|---|
| 400 | invalid_request_error | `context_length_exceeded` for a prompt over the context |
| 401 | invalid_request_error | invalid_api_key |
| 403 | permission_error | — |
| 404 | invalid_request_error | model_not_found (an unknown model); none for a path not served |
| 405 | invalid_request_error | — (a method the path does not take) |
| 413 | invalid_request_error | request_too_large |
| 415 | invalid_request_error | unsupported_media_type (a body declared as other than JSON) |
| 429 | rate_limit_error | rate_limit_exceeded |
| 429 | insufficient_quota (the monthly quota) | insufficient_quota |
| 5xx | server_error (503: service_unavailable) | backend_error, backend_unavailable, … |

A monthly quota's 429 carries `x-should-retry: false`: its `Retry-After` is the month's end,
and the SDK would otherwise retry it.
"""

from __future__ import annotations

from typing import Any

from litestar import Response

from gateway.errors import ApiError
from gateway.inference import errors as inference_errors
from gateway.limits.service import QUOTA_EXCEEDED
from gateway.openai_api.schemas import ErrorBody, ErrorDetail

_CODES = {
    inference_errors.CONTEXT_WINDOW_EXCEEDED: "context_length_exceeded",
    inference_errors.INVALID_MODEL: "model_not_found",
    inference_errors.BACKEND_FAILED: "backend_error",
    inference_errors.BACKEND_UNAVAILABLE: "backend_unavailable",
    inference_errors.CLIENT_CLOSED_REQUEST: "client_closed_request",
    QUOTA_EXCEEDED: "insufficient_quota",
}
_BY_STATUS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    503: ("service_unavailable", "service_unavailable"),
}


def error_body(error: ApiError) -> ErrorBody:
    default_type = "server_error" if error.status_code >= 500 else "invalid_request_error"
    kind, code = _BY_STATUS.get(error.status_code, (default_type, None))
    code = _CODES.get(error.code, code)
    if error.code == QUOTA_EXCEEDED:
        kind = "insufficient_quota"
    return ErrorBody(ErrorDetail(error.message, kind, error.param, code))


def error_response(error: ApiError) -> Response[Any]:
    headers = dict(error.headers)
    if error.code == QUOTA_EXCEEDED:
        headers["x-should-retry"] = "false"
    return Response(error_body(error), status_code=error.status_code, headers=headers)
