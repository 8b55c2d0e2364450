"""The sampling options of a run: what both APIs' request bodies map onto, and what the
backend transport (`gateway.triton.inputs`) sends."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, fields

import msgspec

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError


@dataclass(frozen=True)
class SamplingParams:
    """Every sampling option a run can set: the one definition that both APIs' request bodies
    map onto (`from_request`). An option left unset (None) is not sent, and the backend's
    default applies; TensorRT-LLM's input carrying each is `gateway.triton.inputs`'s
    business (`SAMPLING_INPUTS`)."""

    max_tokens: int | None = None
    """TensorRT-LLM's `request_output_len`; None until the model's maximum is known."""
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    @classmethod
    def from_request(cls, body: object, max_tokens: int | None) -> SamplingParams:
        """The options `body` has attributes for, by the same names; the rest unset."""
        return cls(
            max_tokens,
            **{option: getattr(body, option, None) for option in OPTIONAL_SAMPLING},
        )


OPTIONAL_SAMPLING = tuple(
    option.name for option in fields(SamplingParams) if option.name != "max_tokens"
)
"""The options sent only when set: every one but `max_tokens`, which every request carries."""


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
                ErrorCode.BAD_INPUT,
                f"Bad input: '{name}' is {value!r}, which the backend's 32-bit float cannot "
                f"hold ({limit})",
                param=name,
            )


def _as_float32(value: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)
