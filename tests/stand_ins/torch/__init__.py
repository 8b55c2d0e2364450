"""Stand-in for the parts of torch that `build_engines.embedding_engine.export_onnx` uses
(see README.md): no tensors are computed; `torch.onnx.export` records what it was asked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

int32 = "torch.int32"
__version__ = "2.13.0"


class Tensor:
    def __init__(self, shape: tuple[int, ...], dtype: str) -> None:
        self.shape = shape
        self.dtype = dtype


from torch import nn, onnx  # noqa: E402  (they import Tensor from here)


def ones(shape: tuple[int, ...], dtype: str) -> Tensor:
    return Tensor(tuple(shape), dtype)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    yield


__all__ = ["Tensor", "int32", "nn", "no_grad", "ones", "onnx"]
