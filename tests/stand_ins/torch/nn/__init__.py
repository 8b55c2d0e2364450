"""Stand-in for `torch.nn`: a Module calls its `forward`, `eval` returns it."""

from __future__ import annotations

from typing import Any

from torch.nn import functional


class Module:
    def __init__(self) -> None:
        self.training = True

    def eval(self) -> Module:
        self.training = False
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)  # type: ignore[attr-defined]


__all__ = ["Module", "functional"]
