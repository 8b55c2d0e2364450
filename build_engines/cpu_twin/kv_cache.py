"""One request's KV cache, grown in chunks as the sequence grows.

Reserving the model's whole sequence length for every request would cost
256 requests x 5,572 positions up front (SmolLM2 holds 45 KiB per position); growing by
`CHUNK_TOKENS` keeps memory proportional to the tokens actually held, like TensorRT-LLM's
paged cache, at the price of a copy every `CHUNK_TOKENS` tokens.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CHUNK_TOKENS = 64


class KVCache:
    """Keys and values of every layer: arrays (layers, kv_heads, capacity, head_dim).

    `length` positions are valid; the network writes position `length` and commits it by
    advancing `length`.
    """

    def __init__(self, layers: int, kv_heads: int, head_dim: int) -> None:
        self.length = 0
        self.keys: npt.NDArray[np.float32] = np.empty((layers, kv_heads, 0, head_dim), np.float32)
        self.values: npt.NDArray[np.float32] = np.empty_like(self.keys)

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[2])

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.values.nbytes)

    def reserve(self, positions: int) -> None:
        """Make room for `positions` positions, rounding up to whole chunks."""
        if positions <= self.capacity:
            return
        chunks = -(-positions // CHUNK_TOKENS)
        self.keys = self._grown(self.keys, chunks * CHUNK_TOKENS)
        self.values = self._grown(self.values, chunks * CHUNK_TOKENS)

    def _grown(self, array: npt.NDArray[np.float32], capacity: int) -> npt.NDArray[np.float32]:
        layers, kv_heads, _, head_dim = array.shape
        grown = np.empty((layers, kv_heads, capacity, head_dim), np.float32)
        grown[:, :, : self.length] = array[:, :, : self.length]
        return grown
