"""Token ids back to text: per response (upstream's postprocessing) or incrementally (BLS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llm_contract.streaming_decoder import StreamingDecoder

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
