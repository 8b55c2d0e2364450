"""Models as the backend serves them: the catalog, each model's tokenizer, and `prepare`,
which turns a run's request into token ids within the model's limits, or refuses it."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import overload

import anyio
import anyio.to_thread

from gateway.inference.catalog import (
    TEXT_EMBEDDINGS,
    TEXT_GENERATION,
    CatalogEntry,
    CatalogError,
    ModelCatalog,
)
from gateway.inference.chat_template import (
    ChatTemplateError,
    ChatTemplateTimeout,
    InvalidChatTemplate,
)
from gateway.inference.embedding_inputs import (
    EmbeddingBounds,
    check_inputs,
    check_text_lengths,
    checked_sequences,
    pooling_of,
    token_id_sequences,
)
from gateway.inference.embeddings import EmbeddingRequest, EmbeddingTokenizer, PreparedEmbedding
from gateway.inference.errors import (
    context_length_exceeded,
    invalid_input,
    max_tokens_exceeded,
    unknown_model,
)
from gateway.inference.run_request import RunRequest
from gateway.inference.tokenization import ModelTokenizer, Prompt
from gateway.sampling import SamplingParams
from gateway.triton.client import TritonClient
from gateway.triton.token_stream import TokenStream

logger = logging.getLogger("gateway")

ON_LOOP_CHARS = 1000
"""Prompts up to this many characters are tokenized on the event loop: that takes about as
long as the hop to a thread and back (~0.3 ms each, measured); longer ones are tokenized in a
thread, where the tokenizer releases the GIL, so other requests go on (docs/api/workers-ai.md,
"Big prompts", says what a caller sees; docs/benchmarks.md what `/healthz` does meanwhile)."""
ON_LOOP_MESSAGES = 16
"""Conversations of up to this many messages (and `ON_LOOP_CHARS`) are rendered on the loop
(~0.1 ms); a longer one costs ~3.4 µs a message in Jinja, so it is rendered in a thread."""
RENDER_TIME_LIMIT_SECONDS = 2.0
"""A chat template that takes longer than this on one request's messages is refused (400),
and stops at its next output: within the bounds on messages and characters a render takes
milliseconds, so only a pathological template and input reach it. One that writes nothing
for longer is answered at the limit all the same, and its thread finishes on its own."""


@dataclass(frozen=True)
class InputBounds:
    """What one request may ask the gateway to render and tokenize, checked before any of it:
    a 1 MB body of empty messages otherwise costs ~115 ms of template rendering."""

    max_messages: int = 2048
    max_characters: int = 262_144
    max_embedding_inputs: int = 100
    """Texts (or token-id lists) per embeddings request."""
    max_embedding_tokens: int = 32_768
    """Tokens of all of an embeddings request's inputs together."""

    @property
    def embeddings(self) -> EmbeddingBounds:
        return EmbeddingBounds(
            self.max_embedding_inputs, self.max_embedding_tokens, self.max_characters
        )


@dataclass(frozen=True)
class Generation:
    """A request the backend can serve, tokenized and within the model's limits."""

    entry: CatalogEntry
    tokenizer: ModelTokenizer
    input_ids: list[int]
    params: SamplingParams
    generator: TritonClient
    request_id: str

    @property
    def max_tokens(self) -> int:
        assert self.params.max_tokens is not None
        return self.params.max_tokens

    @property
    def prompt_tokens(self) -> int:
        return len(self.input_ids)

    def token_ids(self) -> TokenStream:
        return self.generator.generate(
            self.entry.triton_model,
            self.input_ids,
            self.params,
            self.tokenizer.eos_id,
            stop_ids=self.tokenizer.stop_ids,
            request_id=self.request_id,
            url=self.entry.triton_grpc_url,
        )


class InferenceService:
    def __init__(
        self,
        catalog: ModelCatalog,
        tokenizers: dict[str, ModelTokenizer],
        generator: TritonClient,
        bounds: InputBounds = InputBounds(),
        embedding_tokenizers: dict[str, EmbeddingTokenizer] | None = None,
    ) -> None:
        self.catalog = catalog
        self.bounds = bounds
        self.loaded_at = int(time.time())
        """When the catalog was loaded: OpenAI's `created` of each model."""
        self._tokenizers = tokenizers
        self._embedding_tokenizers = embedding_tokenizers or {}
        self._generator = generator
        self._tokenizing = anyio.CapacityLimiter(max(1, len(os.sched_getaffinity(0)) - 1))
        """Each long prompt keeps a core busy while it is tokenized: one core stays the loop's."""

    @classmethod
    def from_catalog(
        cls,
        catalog: ModelCatalog,
        generator: TritonClient,
        bounds: InputBounds = InputBounds(),
    ) -> InferenceService:
        """Load every model's tokenizer once, at start-up, never per request."""
        catalog.check_tokenizers()
        tokenizers = {
            entry.name: _load_tokenizer(entry) for entry in catalog if entry.task == TEXT_GENERATION
        }
        embedding_tokenizers = {
            entry.name: _load_embedding_tokenizer(entry)
            for entry in catalog
            if entry.task == TEXT_EMBEDDINGS
        }
        return cls(catalog, tokenizers, generator, bounds, embedding_tokenizers)

    def entry(self, model_name: str) -> CatalogEntry:
        """The catalog's model of that name, or the 404 that refuses it."""
        entry = self.catalog.get(model_name)
        if entry is None:
            raise unknown_model(model_name)
        return entry

    @overload
    async def prepare(
        self, entry: CatalogEntry, request: RunRequest, request_id: str
    ) -> Generation: ...
    @overload
    async def prepare(
        self, entry: CatalogEntry, request: EmbeddingRequest, request_id: str
    ) -> PreparedEmbedding: ...
    async def prepare(
        self, entry: CatalogEntry, request: RunRequest | EmbeddingRequest, request_id: str
    ) -> Generation | PreparedEmbedding:
        """Every refusal the model's limits make, before the backend is called."""
        if isinstance(request, EmbeddingRequest):
            return await self._prepare_embedding(entry, request, request_id)
        tokenizer = self._tokenizers[entry.name]
        characters = self._checked_characters(request)
        prompt = await self._prompt(tokenizer, request, characters)
        at_least = tokenizer.min_tokens(prompt)
        if at_least > entry.max_input_tokens:
            raise context_length_exceeded(at_least, entry.max_input_tokens, at_least=True)
        input_ids = await self._encode(tokenizer, prompt)
        if len(input_ids) > entry.max_input_tokens:
            raise context_length_exceeded(len(input_ids), entry.max_input_tokens)
        params = request.sampling
        if params.max_tokens is None:
            params = replace(params, max_tokens=entry.max_output_tokens)
        elif params.max_tokens > entry.max_output_tokens:
            raise max_tokens_exceeded(params.max_tokens, entry.max_output_tokens)
        return Generation(entry, tokenizer, input_ids, params, self._generator, request_id)

    async def _prepare_embedding(
        self, entry: CatalogEntry, request: EmbeddingRequest, request_id: str
    ) -> PreparedEmbedding:
        tokenizer = self._embedding_tokenizers[entry.name]
        pooling = pooling_of(request, entry)
        bounds = self.bounds.embeddings
        check_inputs(request, bounds)
        limit = entry.max_input_tokens
        if request.texts is None:
            sequences = token_id_sequences(request, tokenizer, limit)
        else:
            check_text_lengths(request, tokenizer, limit)
            if sum(len(text) for text in request.texts) <= ON_LOOP_CHARS:
                sequences = tokenizer.encode(request.texts)
            else:
                sequences = await anyio.to_thread.run_sync(
                    tokenizer.encode, request.texts, limiter=self._tokenizing
                )
        sequences = checked_sequences(request, sequences, tokenizer, limit, bounds)
        return PreparedEmbedding(entry, sequences, pooling, self._generator, request_id)

    def _checked_characters(self, request: RunRequest) -> int:
        """The request's characters, once it is within the bounds on messages and them."""
        bounds = self.bounds
        if request.messages is not None and len(request.messages) > bounds.max_messages:
            raise invalid_input(
                f"{len(request.messages)} messages, over the limit of {bounds.max_messages} "
                "per request",
                param="messages",
            )
        characters = _characters(request)
        if characters > bounds.max_characters:
            field = "prompt" if request.raw_prompt is not None else "messages"
            raise invalid_input(
                f"{characters} characters of input, over the limit of {bounds.max_characters} "
                "per request",
                param=field,
            )
        return characters

    async def _prompt(
        self, tokenizer: ModelTokenizer, request: RunRequest, characters: int
    ) -> Prompt:
        """Rendered on the loop when it is small, else in a thread and within a time limit."""
        messages = request.messages or ()
        if len(messages) <= ON_LOOP_MESSAGES and characters <= ON_LOOP_CHARS:
            return _prompt(tokenizer, request)
        deadline = time.monotonic() + RENDER_TIME_LIMIT_SECONDS
        try:
            with anyio.fail_after(RENDER_TIME_LIMIT_SECONDS):
                return await anyio.to_thread.run_sync(
                    _prompt,
                    tokenizer,
                    request,
                    deadline,
                    limiter=self._tokenizing,
                    abandon_on_cancel=True,
                )
        except (TimeoutError, ChatTemplateTimeout):
            raise invalid_input(
                f"the model's chat template took over {RENDER_TIME_LIMIT_SECONDS:g} s on these "
                "messages",
                param="messages",
            ) from None

    async def _encode(self, tokenizer: ModelTokenizer, prompt: Prompt) -> list[int]:
        if prompt.text_length <= ON_LOOP_CHARS:
            return tokenizer.encode(prompt)
        return await anyio.to_thread.run_sync(tokenizer.encode, prompt, limiter=self._tokenizing)

    async def models_ready(self) -> bool:
        for entry in self.catalog:
            if not await self._generator.model_ready(entry.triton_model, entry.triton_grpc_url):
                return False
        return True


def _load_embedding_tokenizer(entry: CatalogEntry) -> EmbeddingTokenizer:
    try:
        return EmbeddingTokenizer.from_directory(Path(entry.tokenizer_dir))
    except Exception as error:  # the tokenizers library raises a bare Exception
        raise CatalogError(
            f"model '{entry.name}': cannot load its tokenizer from {entry.tokenizer_dir}: {error}"
        ) from error


def _load_tokenizer(entry: CatalogEntry) -> ModelTokenizer:
    try:
        tokenizer = ModelTokenizer.from_directory(
            Path(entry.tokenizer_dir), chat_template=entry.chat_template
        )
    except InvalidChatTemplate as error:
        source = (
            "the catalog's chat_template"
            if entry.chat_template is not None
            else f"the chat template in {entry.tokenizer_dir}"
        )
        raise CatalogError(f"model '{entry.name}': {source} does not compile: {error}") from error
    except Exception as error:  # the tokenizers library raises a bare Exception
        raise CatalogError(
            f"model '{entry.name}': cannot load its tokenizer from {entry.tokenizer_dir}: {error}"
        ) from error
    if tokenizer.longest_token_chars is None:
        logger.warning(
            "model %s: its tokenizer gives no bound on characters per token, so every prompt "
            "is tokenized in full before its length is checked",
            entry.name,
        )
    return tokenizer


def _characters(request: RunRequest) -> int:
    if request.raw_prompt is not None:
        return len(request.raw_prompt)
    return sum(len(message.role) + len(message.content) for message in request.messages or ())


def _prompt(
    tokenizer: ModelTokenizer, request: RunRequest, deadline: float | None = None
) -> Prompt:
    if request.raw_prompt is not None:
        return tokenizer.raw_prompt(request.raw_prompt)
    assert request.messages is not None
    try:
        return tokenizer.chat_prompt(request.messages, deadline)
    except ChatTemplateTimeout:
        raise
    except ChatTemplateError as error:
        raise invalid_input(str(error)) from error
