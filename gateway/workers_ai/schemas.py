"""Request and response bodies of the Workers AI text-generation API we mirror.

Defaults and ranges follow Workers AI's published schema for llama-2-7b-chat; unknown fields
are rejected so that a misspelt option is an error rather than silently ignored.
"""

from __future__ import annotations

import math
import struct
from typing import Annotated

import msgspec

from gateway.errors import BAD_INPUT, ApiError

Temperature = Annotated[float, msgspec.Meta(ge=0, le=5)]
TopP = Annotated[float, msgspec.Meta(ge=0.001, le=1)]
TopK = Annotated[int, msgspec.Meta(ge=1, le=50)]
Seed = Annotated[int, msgspec.Meta(ge=1, le=9_999_999_999)]
RepetitionPenalty = Annotated[float, msgspec.Meta(ge=0.01, le=2)]
"""Workers AI documents 0 to 2; TensorRT-LLM refuses a penalty of 0 (1 = no penalty), and a
tiny one becomes 0 in the backend's float32."""
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
MaxTokens = Annotated[int, msgspec.Meta(ge=1)]
Role = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


FLOAT32_SMALLEST_NORMAL = 1.1754943508222875e-38


def refuse_what_float32_loses(body: msgspec.Struct) -> None:
    """Each float option reaches the backend as FP32 (TensorRT-LLM's inputs): one that is
    not 0 but is 0 there (1e-320 passes `ge=0`), or subnormal (GPUs that flush subnormals
    to zero read it as 0), or infinite, would run another request than the one sent. Both
    APIs' request bodies call this once msgspec has checked the ranges; the refusal names the
    field (`param`)."""
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if not isinstance(value, float) or value == 0:
            continue
        single = _as_float32(value)
        if abs(single) < FLOAT32_SMALLEST_NORMAL or math.isinf(single):
            limit = (
                "its smallest normal magnitude is 1.2e-38"
                if not math.isinf(single)
                else "its largest is 3.4e38"
            )
            raise ApiError(
                400,
                BAD_INPUT,
                f"Bad input: '{name}' is {value!r}, which the backend's 32-bit float cannot "
                f"hold ({limit})",
                param=name,
            )


def _as_float32(value: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role
    content: str


class TextGenerationRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Either `prompt` or `messages`; `raw` skips the chat template (prompt only)."""

    prompt: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    messages: Annotated[list[Message], msgspec.Meta(min_length=1)] | None = None
    raw: bool = False
    stream: bool = False
    max_tokens: MaxTokens = 256
    temperature: Temperature = 0.6
    top_p: TopP | None = None
    top_k: TopK | None = None
    seed: Seed | None = None
    repetition_penalty: RepetitionPenalty | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None

    def __post_init__(self) -> None:
        refuse_what_float32_loses(self)


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TextGenerationResult(msgspec.Struct, frozen=True):
    response: str
    usage: Usage


class ModelInfo(msgspec.Struct, frozen=True):
    name: str
    description: str
    task: str
    context_length: int
    """Input tokens the model accepts."""
    sequence_length: int
    """Tokens the model generates at most (`max_tokens` may not exceed it)."""
    precision: str
