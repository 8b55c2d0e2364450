"""How a route hands a run to its client: the whole answer, or a stream of encoded events."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request

from gateway.errors import ApiError
from gateway.inference.embeddings import EmbeddingGone, EmbeddingResult, EmbeddingRun
from gateway.inference.errors import client_closed_request
from gateway.inference.events import Completion
from gateway.inference.run import ClientGone, Run
from gateway.inference.sse import SSE_HEADERS
from gateway.inference.streaming import (
    EventStream,
    FirstThenRest,
    StreamSettings,
    client_disconnected,
)


async def whole_answer(run: Run, request: Request[Any, Any, Any]) -> Completion:
    """The run's answer; 499 if the client left first. Errors carry the run's headers."""
    try:
        return await run.complete(functools.partial(client_disconnected, request.receive))
    except ClientGone as gone:
        raise _with_headers(client_closed_request(), run) from gone
    except ApiError as error:
        raise _with_headers(error, run) from None


async def embedding_result(run: EmbeddingRun, request: Request[Any, Any, Any]) -> EmbeddingResult:
    """The run's vectors; 499 if the client left first. Errors carry the run's headers."""
    try:
        return await run.result(functools.partial(client_disconnected, request.receive))
    except EmbeddingGone as gone:
        raise _with_headers(client_closed_request(), run) from gone
    except ApiError as error:
        raise _with_headers(error, run) from None


async def event_stream(
    run: Run, body: AsyncGenerator[bytes, None], options: StreamSettings
) -> EventStream:
    """`body` (an encoder over the run's events) as `text/event-stream`. Its first event is
    awaited first, so that a failure before anything was generated still gets a status."""
    try:
        first = await anext(body)
    except ApiError as error:
        raise _with_headers(error, run) from None
    return EventStream(
        FirstThenRest(first, body),
        headers={**SSE_HEADERS, **run.headers},
        send_timeout=options.send_timeout_seconds,
        buffer_bytes=options.buffer_bytes,
    )


def _with_headers(error: ApiError, run: Run | EmbeddingRun) -> ApiError:
    error.headers.update(run.headers)
    return error
