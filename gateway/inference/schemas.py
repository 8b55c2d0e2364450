"""Request and response bodies of the Workers AI text-generation API we mirror.

Defaults and ranges follow Workers AI's published schema for llama-2-7b-chat; unknown fields
are rejected so that a misspelt option is an error rather than silently ignored.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

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
