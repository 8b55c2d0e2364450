"""Workers AI's wire format for a run: the result, or Server-Sent Events.

Stream: `data: {"response": "…"}` per text piece, its `id` the completion tokens sent so far;
a last event with `usage` (its `id`: every completion token billed); `data: [DONE]`. A failure
after the stream began is an event carrying the error envelope, and the stream ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from gateway.inference.embeddings import EmbeddingResult
from gateway.inference.events import Completion, RunEnd, RunEvent, RunFailed, TextDelta
from gateway.inference.sse import DONE_EVENT, KEEPALIVE_COMMENT, sse_event
from gateway.workers_ai.schemas import TextEmbeddingsResult, TextGenerationResult


def result(completion: Completion) -> TextGenerationResult:
    return TextGenerationResult(response=completion.text, usage=completion.usage)


def embeddings_result(embedded: EmbeddingResult) -> TextEmbeddingsResult:
    return TextEmbeddingsResult(
        shape=list(embedded.vectors.shape), data=embedded.vectors.tolist(), pooling=embedded.pooling
    )


async def sse(events: AsyncGenerator[RunEvent, None]) -> AsyncGenerator[bytes, None]:
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                yield b"".join(sse_event({"response": text}, n) for text, n in event.pieces)
            elif isinstance(event, RunEnd):
                billed = event.usage.completion_tokens
                yield (
                    b"".join(sse_event({"response": text}, n) for text, n in event.pieces)
                    + sse_event({"response": "", "usage": event.usage}, billed)
                    + DONE_EVENT
                )
            elif isinstance(event, RunFailed):
                yield sse_event(event.error.envelope())
            else:
                yield KEEPALIVE_COMMENT
    finally:
        await events.aclose()
