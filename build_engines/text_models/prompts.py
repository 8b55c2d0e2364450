"""Preprocessing without Triton: a batch of prompts and options to TensorRT-LLM's input tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .limits import Limits
from .tensors import IdArray, column, padded_ids, texts, words_list
from .tokenizer import TextTokenizer

OptionalArray = npt.NDArray[Any] | None


@dataclass(frozen=True)
class PromptBatch:
    """The preprocessing model's inputs for one Triton request, each with its batch dim."""

    queries: npt.NDArray[Any]
    output_lens: npt.NDArray[Any]
    bad_words: OptionalArray = None
    stop_words: OptionalArray = None
    end_ids: OptionalArray = None
    pad_ids: OptionalArray = None

    @property
    def size(self) -> int:
        return int(self.queries.shape[0])


def preprocess(batch: PromptBatch, tokenizer: TextTokenizer, limits: Limits) -> dict[str, IdArray]:
    """Output tensors by name; raises `TextRequestError` when a prompt breaks a limit."""
    prompts = [tokenizer.encode_prompt(query) for query in texts(batch.queries)]
    output_lens = batch.output_lens.reshape(batch.size, -1)[:, 0].astype(np.int32)
    for ids, output_len in zip(prompts, output_lens, strict=True):
        limits.check_input(len(ids))
        limits.check_output(int(output_len))
    end_ids = _per_item(batch.end_ids, batch.size, tokenizer.end_id)
    pad_ids = _per_item(batch.pad_ids, batch.size, tokenizer.pad_id)
    return {
        "INPUT_ID": padded_ids(prompts, pad_id=tokenizer.pad_id),
        "REQUEST_INPUT_LEN": column(len(ids) for ids in prompts),
        "REQUEST_OUTPUT_LEN": column(output_lens),
        "BAD_WORDS_IDS": _words(batch.bad_words, batch.size, tokenizer),
        "STOP_WORDS_IDS": _words(batch.stop_words, batch.size, tokenizer),
        "OUT_END_ID": column(end_ids),
        "OUT_PAD_ID": column(pad_ids),
    }


def _per_item(array: OptionalArray, size: int, default: int) -> list[int]:
    if array is None or array.size == 0:
        return [default] * size
    return [int(value) for value in array.reshape(size, -1)[:, 0]]


def _words(array: OptionalArray, size: int, tokenizer: TextTokenizer) -> IdArray:
    if array is None or array.size == 0:
        return words_list([[] for _ in range(size)])
    rows = array.reshape(size, -1)
    return words_list([tokenizer.encode_words(texts(row)) for row in rows])
