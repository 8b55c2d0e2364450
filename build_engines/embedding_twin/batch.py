"""A request's sequences, checked as the plan's bindings would check them before a pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from llm_contract.embeddings import ATTENTION_MASK, INPUT_IDS


class SequencesError(ValueError):
    """The request's tensors cannot be run; the message says why."""


@dataclass(frozen=True)
class Sequences:
    input_ids: npt.NDArray[np.int32]
    attention_mask: npt.NDArray[np.int32]

    @property
    def count(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


def read_sequences(
    input_ids: npt.NDArray[np.generic] | None,
    attention_mask: npt.NDArray[np.generic] | None,
    *,
    vocab_size: int,
    max_length: int,
) -> Sequences:
    for name, array in ((INPUT_IDS, input_ids), (ATTENTION_MASK, attention_mask)):
        if array is None:
            raise SequencesError(f"input '{name}' is required")
        if array.ndim != 2 or array.dtype != np.int32:
            raise SequencesError(f"input '{name}' must be INT32 of shape [batch, length]")
    assert input_ids is not None
    assert attention_mask is not None
    if input_ids.shape != attention_mask.shape:
        raise SequencesError(
            f"'{INPUT_IDS}' {list(input_ids.shape)} and '{ATTENTION_MASK}' "
            f"{list(attention_mask.shape)} differ in shape"
        )
    length = input_ids.shape[1]
    if not 1 <= length <= max_length:
        raise SequencesError(f"sequence length {length} is outside [1, {max_length}]")
    if input_ids.min() < 0 or input_ids.max() >= vocab_size:
        raise SequencesError(f"'{INPUT_IDS}' holds ids outside the vocabulary [0, {vocab_size})")
    if not np.isin(attention_mask, (0, 1)).all() or not attention_mask[:, 0].all():
        raise SequencesError(f"'{ATTENTION_MASK}' must be 0 or 1, and 1 on the first token")
    return Sequences(input_ids.astype(np.int32), attention_mask.astype(np.int32))
