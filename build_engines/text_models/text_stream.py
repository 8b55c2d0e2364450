"""Relaying one generation to the client as text, without Triton: the BLS model's loop.

The generation model answers a streaming request with one response per token (or a few);
each response's tokens go through an `IncrementalDetokenizer`, and every non-empty piece
of text goes to the client at once (`stream`) or joined into one response at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from .detokenize import IncrementalDetokenizer


@dataclass(frozen=True)
class GenerationResponse:
    """One response of the generation model: its tokens, or the error it reported (with
    Triton's error code, which the client gets unchanged)."""

    token_ids: Sequence[int] = ()
    error: str | None = None
    error_code: int | None = None


class Generation(Protocol):
    """A request in flight on the generation model."""

    def responses(self) -> Iterator[GenerationResponse]:
        """Ends after the model's final response."""
        ...

    def stop(self) -> None:
        """Ask the model to end the request early, and wait until it has."""
        ...


class TextSink(Protocol):
    """The client's side: each call but `send_text(final=False)` is the last response."""

    def send_text(self, text: str, *, final: bool) -> None: ...

    def send_final(self) -> None: ...

    def send_error(self, message: str, code: int | None = None) -> None: ...

    def send_cancelled(self) -> None: ...

    def is_cancelled(self) -> bool: ...


class CancellationCheck:
    """Asks the sink whether the client cancelled at most once per period: each question is a
    round trip from the Python backend's stub to the server."""

    def __init__(
        self, sink: TextSink, period_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sink = sink
        self._period_s = period_s
        self._clock = clock
        self._next_check = clock()

    def __call__(self) -> bool:
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self._period_s
        return self._sink.is_cancelled()


def relay(
    generation: Generation,
    detokenizer: IncrementalDetokenizer,
    sink: TextSink,
    *,
    stream: bool,
    cancelled: Callable[[], bool],
    prefix_ids: Sequence[int] = (),
) -> None:
    """Send `prefix_ids`' text, then the generation's, then exactly one final response."""
    if cancelled():  # while waiting for a worker thread
        sink.send_cancelled()
        return
    output = _TextOutput(sink, stream=stream)
    output.add(detokenizer.add(prefix_ids))
    for response in generation.responses():
        if response.error is not None:
            sink.send_error(response.error, response.error_code)
            return
        output.add(detokenizer.add(response.token_ids))
        if cancelled():
            generation.stop()
            sink.send_cancelled()
            return
    output.finish(detokenizer.flush())


class _TextOutput:
    """Streams each non-empty piece, or holds them all for one response at the end."""

    def __init__(self, sink: TextSink, *, stream: bool) -> None:
        self._sink = sink
        self._stream = stream
        self._held: list[str] = []

    def add(self, piece: str) -> None:
        if piece and self._stream:
            self._sink.send_text(piece, final=False)
        elif piece:
            self._held.append(piece)

    def finish(self, rest: str) -> None:
        text = "".join([*self._held, rest])
        if text or not self._stream:
            self._sink.send_text(text, final=True)
        else:
            self._sink.send_final()
