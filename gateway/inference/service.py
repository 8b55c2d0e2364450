"""Text generation for one request: validate, tokenize, check limits, generate, detokenize.

Everything that can be refused is refused in `prepare`, before the backend is called.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from gateway.inference.catalog import CatalogEntry, CatalogError, ModelCatalog
from gateway.inference.chat_template import ChatMessage, ChatTemplateError, InvalidChatTemplate
from gateway.inference.errors import (
    backend_api_error,
    context_length_exceeded,
    invalid_input,
    max_tokens_exceeded,
    unknown_model,
)
from gateway.inference.schemas import TextGenerationRequest, TextGenerationResult, Usage
from gateway.inference.streaming import (
    DONE_EVENT,
    KEEPALIVE_COMMENT,
    Heartbeat,
    sse_event,
    with_heartbeats,
)
from gateway.inference.tokenization import ModelTokenizer, Prompt
from gateway.inference.tracking import RunTracker
from gateway.inference.triton import (
    BackendError,
    BackendUnavailable,
    SamplingParams,
    TokenStream,
    TritonGenerator,
)

logger = logging.getLogger("gateway")

ON_LOOP_CHARS = 1000
"""Prompts up to this many characters are tokenized on the event loop: that takes about as
long as the hop to a thread and back (~0.3 ms each, measured: see the README); longer ones
are tokenized in a thread, where the tokenizer releases the GIL, so other requests go on."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready; nobody is left to answer."""


@dataclass
class Generation:
    """One accepted request; counts what the backend generated and the client was sent."""

    entry: CatalogEntry
    tokenizer: ModelTokenizer
    input_ids: list[int]
    params: SamplingParams
    generator: TritonGenerator
    request_id: str
    completion_tokens: int = 0

    @property
    def usage(self) -> Usage:
        prompt = len(self.input_ids)
        return Usage(prompt, self.completion_tokens, prompt + self.completion_tokens)

    def _token_ids(self) -> TokenStream:
        return self.generator.generate(
            self.entry.triton_model,
            self.input_ids,
            self.params,
            self.tokenizer.eos_id,
            stop_ids=self.tokenizer.stop_ids,
            request_id=self.request_id,
            url=self.entry.triton_grpc_url,
        )

    async def complete(
        self, tracker: RunTracker, client_gone: Callable[[], Awaitable[None]]
    ) -> TextGenerationResult:
        """The whole answer; a client that leaves first cancels the generation.

        Its tokens were never sent, so such a run is billed no completion tokens.
        """
        ids: list[int] = []
        tokens = self._token_ids()
        status = "client_cancelled"

        async def collect() -> None:
            async for token_id in tokens:
                ids.append(token_id)

        collecting = asyncio.ensure_future(collect())
        watching = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait((collecting, watching), return_when=asyncio.FIRST_COMPLETED)
            if collecting.done():
                collecting.result()
                status = "ok"
        except (BackendError, BackendUnavailable) as error:
            status = "backend_error"
            tracker.metrics.backend_errors.labels(self.entry.name, _error_kind(error)).inc()
            raise backend_api_error(error) from error
        finally:
            watching.cancel()
            collecting.cancel()
            tokens.cancel()
            if status == "ok":
                tracker.sent(len(ids))
            with anyio.CancelScope(shield=True):
                await tracker.finish(status)
        if status != "ok":
            raise ClientGone
        self.completion_tokens = len(ids)
        return TextGenerationResult(response=self.tokenizer.decode(ids), usage=self.usage)

    async def sse_events(
        self, keepalive_seconds: float, tracker: RunTracker
    ) -> AsyncGenerator[bytes, None]:
        """SSE bytes; a backend failure before the first event raises, after it is an event.

        Each text event's `id`, and the usage event's, is the number of completion tokens sent
        so far (a last token that adds no text is counted by the usage event). A token counts
        as sent when the consumer asks for the next event, i.e. once the event carrying it was
        handed to the connection; an event the connection never took is not billed.
        """
        detokenizer = self.tokenizer.detokenizer()
        started = False
        received = 0
        status = "client_cancelled"
        items = with_heartbeats(self._token_ids(), keepalive_seconds)
        try:
            async for batch in items:
                if isinstance(batch, Heartbeat):
                    started = True
                    yield KEEPALIVE_COMMENT
                    continue
                events = []
                emitted = 0
                for token_id in batch:
                    received += 1
                    piece = detokenizer.step(token_id)
                    if piece:
                        events.append(sse_event({"response": piece}, received))
                        emitted = received
                if events:
                    started = True
                    yield b"".join(events)
                    tracker.sent(emitted)
            tail = detokenizer.finish()
            self.completion_tokens = received
            await tracker.release_limits(received)
            yield (
                (sse_event({"response": tail}, received) if tail else b"")
                + sse_event({"response": "", "usage": self.usage}, received)
                + DONE_EVENT
            )
            tracker.sent(received)
            status = "ok"
        except (BackendError, BackendUnavailable) as error:
            status = "backend_error"
            tracker.metrics.backend_errors.labels(self.entry.name, _error_kind(error)).inc()
            api_error = backend_api_error(error)
            if not started:
                raise api_error from error
            yield sse_event(api_error.envelope())
        finally:
            with anyio.CancelScope(shield=True):
                await items.aclose()
                await tracker.finish(status)


def _error_kind(error: Exception) -> str:
    return "unavailable" if isinstance(error, BackendUnavailable) else "error"


class InferenceService:
    def __init__(
        self,
        catalog: ModelCatalog,
        tokenizers: dict[str, ModelTokenizer],
        generator: TritonGenerator,
    ) -> None:
        self.catalog = catalog
        self._tokenizers = tokenizers
        self._generator = generator
        self._tokenizing = anyio.CapacityLimiter(max(1, len(os.sched_getaffinity(0)) - 1))
        """Each long prompt keeps a core busy while it is tokenized: one core stays the loop's."""

    @classmethod
    def from_catalog(cls, catalog: ModelCatalog, generator: TritonGenerator) -> InferenceService:
        """Load every model's tokenizer once, at start-up, never per request."""
        catalog.check_tokenizers()
        tokenizers = {entry.name: _load_tokenizer(entry) for entry in catalog}
        return cls(catalog, tokenizers, generator)

    async def prepare(
        self, model_name: str, body: TextGenerationRequest, request_id: str
    ) -> Generation:
        entry = self.catalog.get(model_name)
        if entry is None:
            raise unknown_model(model_name)
        tokenizer = self._tokenizers[entry.name]
        prompt = _prompt(tokenizer, body)
        at_least = tokenizer.min_tokens(prompt)
        if at_least > entry.max_input_tokens:
            raise context_length_exceeded(at_least, entry.max_input_tokens, at_least=True)
        input_ids = await self._encode(tokenizer, prompt)
        if len(input_ids) > entry.max_input_tokens:
            raise context_length_exceeded(len(input_ids), entry.max_input_tokens)
        if body.max_tokens > entry.max_output_tokens:
            raise max_tokens_exceeded(body.max_tokens, entry.max_output_tokens)
        params = SamplingParams(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            seed=body.seed,
            repetition_penalty=body.repetition_penalty,
            frequency_penalty=body.frequency_penalty,
            presence_penalty=body.presence_penalty,
        )
        return Generation(entry, tokenizer, input_ids, params, self._generator, request_id)

    async def _encode(self, tokenizer: ModelTokenizer, prompt: Prompt) -> list[int]:
        if prompt.text_length <= ON_LOOP_CHARS:
            return tokenizer.encode(prompt)
        return await anyio.to_thread.run_sync(tokenizer.encode, prompt, limiter=self._tokenizing)

    async def models_ready(self) -> bool:
        for entry in self.catalog:
            if not await self._generator.model_ready(entry.triton_model, entry.triton_grpc_url):
                return False
        return True


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


def _prompt(tokenizer: ModelTokenizer, body: TextGenerationRequest) -> Prompt:
    if (body.prompt is None) == (body.messages is None):
        raise invalid_input("provide exactly one of 'prompt' or 'messages'")
    if body.messages is not None:
        if body.raw:
            raise invalid_input("'raw' applies to 'prompt' only, not to 'messages'")
        messages = [ChatMessage(m.role, m.content) for m in body.messages]
    else:
        assert body.prompt is not None
        if body.raw:
            return tokenizer.raw_prompt(body.prompt)
        messages = [ChatMessage("user", body.prompt)]
    try:
        return tokenizer.chat_prompt(messages)
    except ChatTemplateError as error:
        raise invalid_input(str(error)) from error
