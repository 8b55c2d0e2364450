"""OpenAI's request and response bodies, as far as this gateway serves them.

A request field that OpenAI defines but the backend cannot honour is declared, so that a
request using it is refused by name (`requests.unsupported`) rather than silently served
without it; a field OpenAI does not define is refused by the decoder, as OpenAI refuses it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from gateway.inference.events import Usage
from gateway.sampling import refuse_what_float32_loses

Temperature = Annotated[float, msgspec.Meta(ge=0, le=2)]
TopP = Annotated[float, msgspec.Meta(gt=0, le=1)]
Seed = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
"""TensorRT-LLM's `seed` is a UINT64; the decoder bounds integers within an int64."""
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
MaxTokens = Annotated[int, msgspec.Meta(ge=1)]
StopString = Annotated[str, msgspec.Meta(min_length=1)]
Stop = StopString | Annotated[list[StopString], msgspec.Meta(max_length=4)]
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class StreamOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    include_usage: bool = False


class ResponseFormat(msgspec.Struct, frozen=True):
    type: str


class ChatMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    content: str | list[dict[str, Any]] | None = None
    """A string, or OpenAI's content parts, of which only `{"type": "text", "text": …}`."""
    name: str | None = None
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None
    function_call: Any | None = None
    refusal: str | None = None


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What both endpoints take: the model, sampling, stop strings, streaming."""

    model: ModelName
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    seed: Seed | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    stop: Stop | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    user: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    logit_bias: dict[str, float] | None = None

    def __post_init__(self) -> None:
        refuse_what_float32_loses(self)


class ChatCompletionRequest(_Request, frozen=True, forbid_unknown_fields=True, kw_only=True):
    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1)]
    max_completion_tokens: MaxTokens | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any | None = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: Any | None = None
    response_format: ResponseFormat | None = None
    store: bool | None = None


class CompletionRequest(_Request, frozen=True, forbid_unknown_fields=True, kw_only=True):
    prompt: str | list[Any]
    """A string; OpenAI's lists (several prompts, token ids) only as one string."""
    max_tokens: MaxTokens | None = 16
    """OpenAI's default for completions."""
    logprobs: int | None = None
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None


class AssistantMessage(msgspec.Struct, frozen=True):
    content: str
    role: str = "assistant"
    refusal: None = None


class ChatChoice(msgspec.Struct, frozen=True):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(msgspec.Struct, frozen=True):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    object: str = "chat.completion"


class CompletionChoice(msgspec.Struct, frozen=True):
    index: int
    text: str
    finish_reason: str
    logprobs: None = None


class Completion(msgspec.Struct, frozen=True):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    object: str = "text_completion"


class EmbeddingRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    model: ModelName
    input: str | list[Any]
    """A string, a list of strings, a list of token ids, or a list of lists of token ids."""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: Annotated[str, msgspec.Meta(max_length=512)] | None = None


class Embedding(msgspec.Struct, frozen=True):
    index: int
    embedding: list[float] | str
    """The vector, or (`encoding_format: base64`) its little-endian float32 bytes in base64."""
    object: str = "embedding"


class EmbeddingUsage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct, frozen=True):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: str = "list"


class Model(msgspec.Struct, frozen=True):
    id: str
    created: int
    owned_by: str
    context_length: int
    """Input tokens the model accepts (an extension, as vLLM's `max_model_len`); an embedding
    model: per input."""
    object: str = "model"
    max_output_tokens: int | None = None
    """Text generation: tokens it generates at most, `max_tokens` may not exceed it (an
    extension)."""
    task: str = "Text Generation"
    """The catalog's task (an extension): `Text Generation` or `Text Embeddings`."""
    dimensions: int | None = None
    """Text embeddings: the vectors' length (an extension)."""


class ModelList(msgspec.Struct, frozen=True):
    data: list[Model]
    object: str = "list"


class ErrorDetail(msgspec.Struct, frozen=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail
