"""OpenAI's wire format for a run: `chat.completion` / `text_completion` objects, or chunks.

Stream: chunks sharing the run's `id` and `created`; for chat, the first carries
`delta.role`; text deltas that join to the whole answer; a chunk with `finish_reason`; with
`stream_options.include_usage` a chunk with no choices and the `usage` (and `usage: null` on
the others); then `data: [DONE]`. A failure after the stream began is `data: {"error": …}`,
which the SDK raises, and the stream ends.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from typing import Any

from gateway.inference.embeddings import EmbeddingResult, EmbeddingRun
from gateway.inference.events import Completion, RunEnd, RunEvent, RunFailed, TextDelta, Usage
from gateway.inference.run import Run
from gateway.inference.sse import DONE_EVENT, KEEPALIVE_COMMENT, sse_event
from gateway.openai_api import schemas
from gateway.openai_api.errors import error_body


def chat_completion(run: Run, completion: Completion) -> schemas.ChatCompletion:
    return schemas.ChatCompletion(
        id=f"chatcmpl-{run.request_id}",
        created=run.created,
        model=run.model,
        choices=[
            schemas.ChatChoice(
                0, schemas.AssistantMessage(completion.text), completion.finish_reason
            )
        ],
        usage=completion.usage,
    )


def text_completion(run: Run, completion: Completion) -> schemas.Completion:
    return schemas.Completion(
        id=f"cmpl-{run.request_id}",
        created=run.created,
        model=run.model,
        choices=[schemas.CompletionChoice(0, completion.text, completion.finish_reason)],
        usage=completion.usage,
    )


def embedding_list(
    run: EmbeddingRun, embedded: EmbeddingResult, encoding_format: str
) -> schemas.EmbeddingList:
    vectors = embedded.vectors
    data: list[list[float] | str]
    if encoding_format == "base64":
        data = [base64.b64encode(vector.astype("<f4").tobytes()).decode() for vector in vectors]
    else:
        data = vectors.tolist()
    usage = embedded.usage
    return schemas.EmbeddingList(
        data=[schemas.Embedding(index, vector) for index, vector in enumerate(data)],
        model=run.model,
        usage=schemas.EmbeddingUsage(usage.prompt_tokens, usage.total_tokens),
    )


class _Chunks:
    """One stream's chunks: the fields every chunk repeats, and its kind's choice."""

    def __init__(self, run: Run, *, chat: bool, include_usage: bool) -> None:
        self._chat = chat
        self._head: dict[str, Any] = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{run.request_id}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": run.created,
            "model": run.model,
        }
        self._tail: dict[str, Any] = {"usage": None} if include_usage else {}

    def choice(self, text: str | None, finish_reason: str | None = None) -> bytes:
        """A chunk of text (chat: None is the last chunk's empty delta)."""
        if self._chat:
            choice = {"index": 0, "delta": {} if text is None else {"content": text}}
        else:
            choice = {"index": 0, "text": text or ""}
        choice.update(logprobs=None, finish_reason=finish_reason)
        return sse_event({**self._head, "choices": [choice], **self._tail})

    def role(self) -> bytes:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        return sse_event({**self._head, "choices": [choice], **self._tail})

    def usage(self, usage: Usage) -> bytes:
        return sse_event({**self._head, "choices": [], "usage": usage})


async def sse(
    run: Run, events: AsyncGenerator[RunEvent, None], *, chat: bool, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    chunks = _Chunks(run, chat=chat, include_usage=include_usage)
    opening = chunks.role() if chat else b""
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                text = "".join(piece.text for piece in event.pieces)
                yield opening + chunks.choice(text)
                opening = b""
            elif isinstance(event, RunEnd):
                text = "".join(piece.text for piece in event.pieces)
                yield (
                    opening
                    + (chunks.choice(text) if text else b"")
                    + chunks.choice(None, event.finish_reason)
                    + (chunks.usage(event.usage) if include_usage else b"")
                    + DONE_EVENT
                )
            elif isinstance(event, RunFailed):
                yield sse_event(error_body(event.error))
            else:
                yield KEEPALIVE_COMMENT
    finally:
        await events.aclose()
