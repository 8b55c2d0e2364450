"""The engine's per-request limits, checked on the text path before the engine sees a request.

TensorRT-LLM rejects an over-long prompt with its own wording and trims an over-long output
request; checking here gives the client the same message whichever engine (GPU or CPU twin)
serves, worded as the CPU twin and the gateway word it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import ModelArgs


class TextRequestError(ValueError):
    """The request cannot be served as sent; the message goes back to the client."""


@dataclass(frozen=True)
class Limits:
    max_input_len: int | None = None
    max_output_len: int | None = None

    @classmethod
    def from_args(cls, args: ModelArgs) -> Limits:
        return cls(args.integer("max_input_len"), args.integer("max_output_len"))

    def check_input(self, length: int) -> None:
        if length < 1:
            raise TextRequestError("the prompt is empty: it needs at least one token")
        if self.max_input_len is not None and length > self.max_input_len:
            raise TextRequestError(
                f"input length {length} exceeds the model's context length of "
                f"{self.max_input_len} tokens by {length - self.max_input_len}"
            )

    def check_output(self, length: int) -> None:
        if length < 1:
            raise TextRequestError(f"max_tokens must be at least 1, got {length}")
        if self.max_output_len is not None and length > self.max_output_len:
            raise TextRequestError(
                f"max_tokens {length} exceeds the model's maximum output of "
                f"{self.max_output_len} tokens by {length - self.max_output_len}"
            )
