"""Token ids to text for one generation, ended early by a stop string, and what is billed."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.inference.events import FinishReason, TextPiece
from gateway.inference.stop_strings import StopStrings
from gateway.inference.tokenization import ModelTokenizer


class Decoding:
    """Token ids to text pieces for one generation, ended early by a stop string."""

    def __init__(self, tokenizer: ModelTokenizer, stop: tuple[str, ...], max_tokens: int) -> None:
        self._detokenizer = tokenizer.detokenizer()
        self._stop = StopStrings(stop) if stop else None
        self._max_tokens = max_tokens
        self.received = 0
        """Tokens taken, up to the one that completed a stop string: those are billed."""

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.matched

    def take(self, token_ids: Iterable[int]) -> list[TextPiece]:
        pieces = []
        for token_id in token_ids:
            self.received += 1
            text = self._detokenizer.step(token_id)
            if text and self._stop is not None:
                text = self._stop.feed(text)
            if text:
                pieces.append(TextPiece(text, self.received))
            if self.stopped:
                break
        return pieces

    def finish(self) -> list[TextPiece]:
        """The text held back once the generation has ended."""
        if self.stopped:
            return []
        text = self._detokenizer.finish()
        if self._stop is not None:
            text = self._stop.feed(text) if text else ""
            if not self._stop.matched:
                text += self._stop.flush()
        return [TextPiece(text, self.received)] if text else []

    @property
    def finish_reason(self) -> FinishReason:
        if self.stopped or self.received < self._max_tokens:
            return FinishReason.STOP
        return FinishReason.LENGTH
