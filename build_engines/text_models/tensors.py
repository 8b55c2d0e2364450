"""NumPy layouts of TensorRT-LLM's tensors and Triton's string tensors.

Every tensor here carries the leading batch dimension that Triton adds for models with
`max_batch_size > 0`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int32]
TextArray = npt.NDArray[np.object_]


def texts(array: npt.NDArray[Any]) -> list[str]:
    """A STRING tensor's elements, flattened, as text (Triton hands them over as bytes)."""
    return [_text(item) for item in array.reshape(-1)]


def text_tensor(rows: Sequence[Sequence[str]]) -> TextArray:
    """A STRING tensor of UTF-8 bytes, one row per batch item."""
    return np.array([[text.encode("utf-8") for text in row] for row in rows], dtype=np.object_)


def column(values: Iterable[int]) -> IdArray:
    """Per-item scalars as shape (batch, 1), Triton's form of `dims: [ 1 ]`."""
    return np.array([[value] for value in values], dtype=np.int32).reshape(-1, 1)


def padded_ids(sequences: Sequence[Sequence[int]], pad_id: int) -> IdArray:
    """Token sequences as one (batch, longest) tensor padded on the right with `pad_id`."""
    width = max((len(ids) for ids in sequences), default=0)
    batch = np.full((len(sequences), width), pad_id, dtype=np.int32)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = ids
    return batch


def words_list(batch: Sequence[Sequence[Sequence[int]]]) -> IdArray:
    """TensorRT-LLM's stop/bad words layout, shape (batch, 2, n).

    Per item, row 0 holds the words' tokens back to back and row 1 each word's end offset;
    items are padded to one width, tokens with 0 and offsets with -1, as upstream does.
    With no words at all the tensor is (batch, 2, 0), which the engine reads as none.
    """
    flat = [[token for word in words for token in word] for words in batch]
    ends = [np.cumsum([len(word) for word in words], dtype=np.int64).tolist() for words in batch]
    width = max((len(tokens) for tokens in flat), default=0)
    tensor = np.zeros((len(batch), 2, width), dtype=np.int32)
    tensor[:, 1, :] = -1
    for item, (tokens, offsets) in enumerate(zip(flat, ends, strict=True)):
        tensor[item, 0, : len(tokens)] = tokens
        tensor[item, 1, : len(offsets)] = offsets
    return tensor


def beam_tokens(
    output_ids: npt.NDArray[Any], sequence_length: npt.NDArray[Any] | None
) -> list[int]:
    """The first item's first beam of `output_ids` (batch, beam, tokens), cut to its length.

    Slicing tolerates both readings of `sequence_length` in streaming mode (tokens in this
    response, or generated so far): either way no padding is left.
    """
    tokens = output_ids.reshape(-1) if output_ids.ndim < 3 else output_ids[0, 0]
    if sequence_length is not None and sequence_length.size:
        tokens = tokens[: int(sequence_length.reshape(-1)[0])]
    return [int(token) for token in tokens]


def _text(item: object) -> str:
    if isinstance(item, bytes | bytearray):
        return bytes(item).decode("utf-8")
    return str(item)
