"""Request and response bodies of the Workers AI API we mirror.

A run's body is read for the task of the model it names (`RunBody`, `gateway.workers_ai.
requests`). Defaults and ranges follow Workers AI's published schema for llama-2-7b-chat;
unknown fields are rejected so that a misspelt option is an error rather than silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar.openapi.spec import Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from gateway.errors import undecodable_body
from gateway.inference.events import Usage
from gateway.sampling import refuse_what_float32_loses

Body = TypeVar("Body", bound=msgspec.Struct)

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

    def __post_init__(self) -> None:
        refuse_what_float32_loses(self)


class TextGenerationResult(msgspec.Struct, frozen=True):
    response: str
    usage: Usage


EmbeddingText = Annotated[str, msgspec.Meta(min_length=1)]


class TextEmbeddingsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Workers AI's bge models: one text or a batch; `pooling` where the model has both;
    `truncate_inputs` cuts a text over the model's input limit instead of refusing it."""

    text: EmbeddingText | list[EmbeddingText]
    pooling: Literal["mean", "cls"] | None = None
    truncate_inputs: bool = False


class TextEmbeddingsResult(msgspec.Struct, frozen=True):
    shape: list[int]
    """[inputs, dimensions]"""
    data: list[list[float]]
    """One unit-length vector per input, in the request's order."""
    pooling: str


class ModelInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    description: str
    task: str
    context_length: int
    """Input tokens the model accepts (an embedding model: per input)."""
    precision: str
    sequence_length: int | None = None
    """Text generation: tokens the model generates at most (`max_tokens` may not exceed it)."""
    dimensions: int | None = None
    """Text embeddings: the vectors' length."""
    poolings: list[str] | None = None
    """Text embeddings: the `pooling` values it takes, the default first."""


class RunBody:
    """A run's JSON body, not yet read: one URL runs models of every task, and what the body
    must hold depends on the model's task, known only once the model is found."""

    __slots__ = ("_json",)

    def __init__(self, json: Any) -> None:
        self._json = json

    def read(self, kind: type[Body]) -> Body:
        """The body as `kind`, or the 400 (5006) naming what is wrong and where."""
        try:
            return msgspec.convert(self._json, kind)
        except msgspec.ValidationError as error:
            raise undecodable_body(error) from None

    @staticmethod
    def decoder(kind: type, value: Any) -> RunBody:
        return RunBody(value)


RUN_BODY_DECODERS = [(lambda kind: kind is RunBody, RunBody.decoder)]
"""Litestar hands the route the decoded JSON as it is (`type_decoders`)."""


class RunBodySchema(OpenAPISchemaPlugin):
    """Documents a run's body as the bodies of the tasks the API serves."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is RunBody

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        return Schema(
            one_of=[
                schema_creator.for_field_definition(FieldDefinition.from_annotation(body))
                for body in (TextGenerationRequest, TextEmbeddingsRequest)
            ]
        )
