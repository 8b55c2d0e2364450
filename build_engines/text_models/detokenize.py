"""Token ids back to text: per response (upstream's postprocessing) or incrementally (BLS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from .tensors import TextArray, text_tensor
from .tokenizer import TextTokenizer


def decode_each(
    tokenizer: TextTokenizer,
    tokens_batch: npt.NDArray[Any],
    sequence_lengths: npt.NDArray[Any] | None,
) -> TextArray:
    """Decode every (item, beam) of `tokens_batch` (batch, beam, tokens) on its own.

    This is upstream's postprocessing, kept faithful: in the streaming ensemble each call
    sees one response's tokens only, so a character whose UTF-8 bytes span tokens comes out
    as U+FFFD and a token's leading space is stripped (tensorrtllm_backend #192, #196, #606).
    The `bls` model streams correctly; see `IncrementalDetokenizer`.
    """
    tokens = tokens_batch if tokens_batch.ndim == 3 else tokens_batch[:, None, :]
    lengths = (
        np.full(tokens.shape[:2], tokens.shape[-1])
        if sequence_lengths is None
        else sequence_lengths.reshape(tokens.shape[:2])
    )
    return text_tensor(
        [
            [
                tokenizer.decode(beam[: int(length)].tolist())
                for beam, length in zip(item, lens, strict=True)
            ]
            for item, lens in zip(tokens, lengths, strict=True)
        ]
    )


class StreamingDecoder:
    """Text pieces as token ids arrive; the pieces join to exactly `decode(all ids)`.

    Llama's decoder is local except for runs of byte-fallback tokens (`<0xF0>`…), which it
    decodes together (a valid UTF-8 run becomes its characters, an invalid one U+FFFD per
    byte), and special tokens, which decode to nothing. So text is emitted only when a
    plain token arrives: the window from the last emitted plain token to the new one is
    decoded, and what it adds beyond the text already sent is the piece. Per token that is
    two decodes of a few ids. (`tokenizers`' DecodeStream raises "Invalid prefix" on invalid
    byte runs, which a model can produce.)
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        skip_special_tokens: bool = True,
        held: frozenset[int] | None = None,
    ) -> None:
        """`held`: `held_token_ids(tokenizer)`, computed once by callers that make many."""
        self._tokenizer = tokenizer
        self._skip_special_tokens = skip_special_tokens
        self._held = held_token_ids(tokenizer) if held is None else held
        self.ids: list[int] = []
        self._window_start = 0
        self._sent_upto = 0
        self._anchored = False

    def step(self, token_id: int) -> str:
        self.ids.append(token_id)
        if token_id in self._held:
            return ""
        return self._emit()

    def finish(self) -> str:
        return self._emit() if self._sent_upto < len(self.ids) else ""

    def _emit(self) -> str:
        start = self._window_start
        window = self._decode(self.ids[start:])
        sent = self._decode(self.ids[start : self._sent_upto]) if self._anchored else ""
        self._window_start = len(self.ids) - 1
        self._sent_upto = len(self.ids)
        self._anchored = True
        return window[len(sent) :]

    def _decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=self._skip_special_tokens)
        return text


def held_token_ids(tokenizer: Tokenizer) -> frozenset[int]:
    """Byte-fallback and special tokens: their text depends on the tokens around them."""
    special = {
        added.content for added in tokenizer.get_added_tokens_decoder().values() if added.special
    }
    return frozenset(
        token_id
        for token, token_id in tokenizer.get_vocab().items()
        if token in special or (len(token) == 6 and token.startswith("<0x") and token.endswith(">"))
    )


class IncrementalDetokenizer:
    """The BLS model's detokenizer: a `StreamingDecoder` fed a response's ids at a time."""

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self._decoder = StreamingDecoder(
            tokenizer.tokenizer, skip_special_tokens=tokenizer.skip_special_tokens
        )

    def add(self, token_ids: Sequence[int]) -> str:
        return "".join(self._decoder.step(int(token_id)) for token_id in token_ids)

    def flush(self) -> str:
        return self._decoder.finish()
