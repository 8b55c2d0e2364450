"""OpenAI's wire format for a run's events and result: chunks that share the run's id, created
time and model; chat's opening role; text deltas; the finish reason; the usage chunk when asked
for; `[DONE]`; a failure as an error event; and the whole `chat.completion` and
`text_completion` bodies."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import pytest

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.inference.events import (
    Completion,
    FinishReason,
    RunEnd,
    RunEvent,
    RunFailed,
    TextDelta,
    TextPiece,
    Usage,
)
from gateway.inference.run import Run
from gateway.inference.streaming import HEARTBEAT
from gateway.openai_api.encoder import chat_completion, sse, text_completion


@dataclass(frozen=True)
class RunIdentity:
    """All of a run the encoder reads: its request id, when it was created and its model (a
    real `Run` needs a backend, a tokenizer and a usage record)."""

    request_id: str = "0123456789abcdef0123456789abcdef"
    created: int = 1_718_445_600
    model: str = "@cf/meta/llama-3.1-8b-instruct"


RUN = cast(Run, RunIdentity())
USAGE = Usage(prompt_tokens=7, completion_tokens=3, total_tokens=10)
CHAT_HEAD = {
    "id": "chatcmpl-0123456789abcdef0123456789abcdef",
    "object": "chat.completion.chunk",
    "created": 1_718_445_600,
    "model": "@cf/meta/llama-3.1-8b-instruct",
}
TEXT_HEAD = {
    **CHAT_HEAD,
    "id": "cmpl-0123456789abcdef0123456789abcdef",
    "object": "text_completion",
}
DONE = "[DONE]"


def delta(*texts: str) -> TextDelta:
    return TextDelta([TextPiece(text, index + 1) for index, text in enumerate(texts)])


def end(*texts: str, reason: FinishReason = FinishReason.STOP) -> RunEnd:
    return RunEnd([TextPiece(text, 3) for text in texts], USAGE, reason)


class Events:
    """A run's events, as the run hands them over, noting whether the encoder closed them."""

    def __init__(self, *events: RunEvent) -> None:
        self._events = events
        self.closed = False

    async def __call__(self) -> AsyncGenerator[RunEvent, None]:
        try:
            for event in self._events:
                yield event
        finally:
            self.closed = True


async def writes(*events: RunEvent, chat: bool = True, include_usage: bool = False) -> list[bytes]:
    """What the stream writes to the client, one item per write."""
    return [
        write async for write in sse(RUN, Events(*events)(), chat=chat, include_usage=include_usage)
    ]


def parsed(write: bytes) -> list[Any]:
    """A write's SSE events: each `data:` payload decoded (`[DONE]` as is), comments as is."""
    events: list[Any] = []
    for event in write.decode().split("\n\n")[:-1]:
        if event.startswith(": "):
            events.append(event)
        elif event == f"data: {DONE}":
            events.append(DONE)
        else:
            assert event.startswith("data: ")
            events.append(msgspec.json.decode(event.removeprefix("data: ")))
    return events


async def stream(*events: RunEvent, chat: bool = True, include_usage: bool = False) -> list[Any]:
    return [
        event
        for write in await writes(*events, chat=chat, include_usage=include_usage)
        for event in parsed(write)
    ]


def chat_chunk(delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**CHAT_HEAD, "choices": [choice]}


def text_chunk(text: str, finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return {**TEXT_HEAD, "choices": [choice]}


# Streams


async def test_a_chat_stream_opens_with_the_assistant_role_then_its_text_ends_and_is_done() -> None:
    events = await stream(delta("Hel", "lo"), delta(" world"), end())

    assert events == [
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"content": "Hello"}),
        chat_chunk({"content": " world"}),
        chat_chunk({}, "stop"),
        DONE,
    ]


async def test_the_role_is_written_together_with_the_first_text() -> None:
    first, *_ = await writes(delta("Hi"), end())

    assert parsed(first) == [
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"content": "Hi"}),
    ]


async def test_a_text_completion_stream_has_no_role_and_ends_with_empty_text() -> None:
    events = await stream(delta("Hel", "lo"), end(), chat=False)

    assert events == [text_chunk("Hello"), text_chunk("", "stop"), DONE]


async def test_text_held_back_to_the_end_comes_before_the_finish_reason() -> None:
    events = await stream(delta("Hi"), end(" there", "!"))

    assert events[-3:] == [chat_chunk({"content": " there!"}), chat_chunk({}, "stop"), DONE]


async def test_the_end_is_written_at_once_from_its_last_text_to_done() -> None:
    *_, last = await writes(delta("Hi"), end("!"))

    assert parsed(last) == [chat_chunk({"content": "!"}), chat_chunk({}, "stop"), DONE]


async def test_a_chat_that_ends_before_any_text_still_opens_with_the_role() -> None:
    events = await stream(end())

    assert events == [
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({}, "stop"),
        DONE,
    ]


@pytest.mark.parametrize(
    ("reason", "sent"), [(FinishReason.STOP, "stop"), (FinishReason.LENGTH, "length")]
)
@pytest.mark.parametrize("chat", [True, False])
async def test_the_finish_reason_is_sent_by_openais_name(
    reason: FinishReason, sent: str, chat: bool
) -> None:
    *_, last_chunk, done = await stream(delta("a"), end(reason=reason), chat=chat)

    assert last_chunk["choices"][0]["finish_reason"] == sent
    assert done == DONE


@pytest.mark.parametrize("chat", [True, False])
async def test_with_include_usage_a_last_chunk_has_the_usage_and_no_choices(chat: bool) -> None:
    *chunks, usage, done = await stream(delta("Hi"), end(), chat=chat, include_usage=True)

    assert usage == {
        **(CHAT_HEAD if chat else TEXT_HEAD),
        "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }
    assert [chunk["usage"] for chunk in chunks] == [None] * len(chunks)
    assert done == DONE


async def test_without_include_usage_no_chunk_has_a_usage_field() -> None:
    chunks = await stream(delta("Hi"), end())

    assert [chunk for chunk in chunks[:-1] if "usage" in chunk] == []


async def test_an_idle_interval_is_a_keep_alive_comment_and_the_role_waits_for_the_text() -> None:
    events = await stream(HEARTBEAT, delta("Hi"), end())

    assert events[:3] == [
        ": keep-alive",
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"content": "Hi"}),
    ]


async def test_a_failure_after_the_stream_began_is_an_error_event_in_openais_format() -> None:
    failure = ApiError(502, ErrorCode.BACKEND_FAILED, "The backend failed the request")

    events = await stream(delta("Hi"), RunFailed(failure))

    assert events[-1] == {
        "error": {
            "message": "The backend failed the request",
            "type": "server_error",
            "param": None,
            "code": "backend_error",
        }
    }
    assert DONE not in events


async def test_the_runs_events_are_closed_when_the_stream_ends() -> None:
    events = Events(delta("Hi"), end())

    _ = [write async for write in sse(RUN, events(), chat=True, include_usage=False)]

    assert events.closed


async def test_the_runs_events_are_closed_when_the_client_stops_reading() -> None:
    events = Events(delta("Hi"), delta("there"), end())
    stream = sse(RUN, events(), chat=True, include_usage=False)

    await anext(stream)
    await stream.aclose()

    assert events.closed


# Whole answers


def encoded(body: object) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body))


def test_a_chat_completion_is_the_assistants_whole_message_with_its_usage() -> None:
    completion = Completion("Hello there", USAGE, FinishReason.LENGTH)

    assert encoded(chat_completion(RUN, completion)) == {
        "id": "chatcmpl-0123456789abcdef0123456789abcdef",
        "created": 1_718_445_600,
        "model": "@cf/meta/llama-3.1-8b-instruct",
        "choices": [
            {
                "index": 0,
                "message": {"content": "Hello there", "role": "assistant", "refusal": None},
                "finish_reason": "length",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        "object": "chat.completion",
    }


def test_a_text_completion_is_the_whole_text_with_its_usage() -> None:
    completion = Completion("Hello there", USAGE, FinishReason.STOP)

    assert encoded(text_completion(RUN, completion)) == {
        "id": "cmpl-0123456789abcdef0123456789abcdef",
        "created": 1_718_445_600,
        "model": "@cf/meta/llama-3.1-8b-instruct",
        "choices": [{"index": 0, "text": "Hello there", "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        "object": "text_completion",
    }
