"""The inference API's refusals, with Workers AI's error codes where it has one.

(Codes, statuses and OpenAI names: `gateway.error_codes`.)
"""

from __future__ import annotations

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.triton.errors import BackendUnavailable

RUN_ERRORS = {
    400: "Bad input, a prompt over the context length, or max_tokens over the model's output",
    401: "Missing, invalid, revoked or expired API token",
    403: "The token belongs to another account",
    404: "No such model",
    413: "Request body too large",
    415: "The body's Content-Type is not JSON",
    429: "A rate limit, the concurrency limit or the monthly token quota is reached",
    502: "The model backend failed the request",
    503: "The model backend is unavailable, or usage cannot be recorded right now",
}
"""The statuses a run answers with, whichever API it came by (for the OpenAPI schema)."""


def invalid_input(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, ErrorCode.BAD_INPUT, f"Bad input: {message}", param=param)


SHOWN_NAME_CHARS = 200


def unknown_model(name: str) -> ApiError:
    """The name is the client's own text: shown escaped (`repr`) and cut, so that a log or a
    terminal that prints the message shows it as data, never as control sequences."""
    shown = repr(name[:SHOWN_NAME_CHARS]) + ("…" if len(name) > SHOWN_NAME_CHARS else "")
    return ApiError(
        404,
        ErrorCode.INVALID_MODEL,
        f"No such model: {shown}; GET …/ai/models/search (or …/ai/v1/models) lists them",
        param="model",
    )


def context_length_exceeded(
    input_tokens: int, context_length: int, *, at_least: bool = False
) -> ApiError:
    """`at_least`: the count is a lower bound from the prompt's length, not a tokenization."""
    least = "at least " if at_least else ""
    return ApiError(
        400,
        ErrorCode.CONTEXT_WINDOW_EXCEEDED,
        f"Input is {least}{input_tokens} tokens, over the model's context length of "
        f"{context_length} tokens by {least}{input_tokens - context_length}",
    )


def max_tokens_exceeded(max_tokens: int, max_output: int) -> ApiError:
    return ApiError(
        400,
        ErrorCode.BAD_INPUT,
        f"Bad input: max_tokens {max_tokens} is over the model's maximum output of "
        f"{max_output} tokens by {max_tokens - max_output}",
        param="max_tokens",
    )


def backend_api_error(error: Exception) -> ApiError:
    if isinstance(error, BackendUnavailable):
        return ApiError(503, ErrorCode.BACKEND_UNAVAILABLE, f"Model backend unavailable: {error}")
    return ApiError(502, ErrorCode.BACKEND_FAILED, f"Model backend failed: {error}")


def client_closed_request() -> ApiError:
    """nginx's 499: a non-streamed run whose client disconnected was cancelled."""
    return ApiError(
        499, ErrorCode.CLIENT_CLOSED_REQUEST, "The client closed the request; it was cancelled"
    )
