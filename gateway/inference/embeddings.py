"""Text embeddings, the pipeline's second task: what a request asks for, the model's
tokenizer, and the run that gets its vectors from the backend (the checks on its inputs:
`embedding_inputs`).

The gateway tokenizes (so limits and bills count exact tokens, as for text generation),
sorts the sequences into the model's padded lengths and sends each length's rows as
batches; Triton's dynamic batcher lets concurrent requests of one length share a pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from gateway.inference.catalog import CatalogEntry
from gateway.inference.errors import backend_api_error
from gateway.inference.events import Usage
from gateway.inference.token_bound import longest_token_chars
from gateway.inference.tracking import RunTracker
from gateway.triton.client import TritonClient
from gateway.triton.errors import BackendError, BackendUnavailable
from gateway.usage.status import RunStatus
from llm_contract.model_repository import TOKENIZER_FILE

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EmbeddingRequest:
    """Texts, or token-id sequences of the model's vocabulary (one of the two), to embed.

    `field` is the API's name for them (`text`, `input`), named in refusals with the index
    of the input at fault; `truncate` cuts an input over the model's limit to it instead of
    refusing it."""

    field: str
    texts: tuple[str, ...] | None = None
    token_ids: tuple[tuple[int, ...], ...] | None = None
    pooling: str | None = None
    truncate: bool = False


class EmbeddingTokenizer:
    """The model's tokenizer as its library applies it to one text: special tokens around
    the text ([CLS] … [SEP]), no padding (the gateway pads to its buckets), no truncation
    (an input over the limit is refused, or cut when the request asks)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        # User text that spells a special token ("[SEP]") stays text, never a control id.
        tokenizer.encode_special_tokens = True
        self._tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self.longest_token_chars = longest_token_chars(tokenizer)
        self.prefix, self.suffix = _special_tokens_around(tokenizer)

    @classmethod
    def from_directory(cls, directory: Path) -> EmbeddingTokenizer:
        return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILE)))

    def min_tokens(self, text: str) -> int:
        """A lower bound on `text`'s tokens, from its length alone."""
        if self.longest_token_chars is None:
            return 0
        return -(-len(text) // self.longest_token_chars) + len(self.prefix) + len(self.suffix)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids. The batch call releases the GIL: it may run in a thread."""
        encoded = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=True)
        return [encoding.ids for encoding in encoded]

    def wrap(self, ids: Sequence[int]) -> list[int]:
        return [*self.prefix, *ids, *self.suffix]

    def truncated(self, ids: list[int], limit: int) -> list[int]:
        if len(ids) <= limit:
            return ids
        return ids[: limit - len(self.suffix)] + list(self.suffix)


def _special_tokens_around(tokenizer: Tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids the tokenizer's post-processor puts before and after a text's own."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return tuple(full[:start]), tuple(full[start + len(plain) :])
    return (), ()


@dataclass(frozen=True)
class PreparedEmbedding:
    """A request the backend can serve: token ids within the model's limits, and how to
    send them."""

    entry: CatalogEntry
    sequences: list[list[int]]
    pooling: str
    generator: TritonClient
    request_id: str
    max_tokens: int = field(default=0, init=False)
    """Nothing is generated: the token budget reserves the input alone."""

    @property
    def prompt_tokens(self) -> int:
        return sum(len(sequence) for sequence in self.sequences)

    async def vectors(self) -> Vectors:
        """The pooled vector of every sequence, in the request's order."""
        entry = self.entry
        assert entry.dimensions is not None
        vectors = np.empty((len(self.sequences), entry.dimensions), np.float32)
        sent = batches(self.sequences, entry.length_buckets, entry.max_batch_size)

        async def run(number: int, rows: list[int], length: int) -> None:
            input_ids, mask = padded_batch([self.sequences[row] for row in rows], length)
            pooled = await self.generator.embed(
                entry.triton_model, input_ids, mask,
                request_id=f"{self.request_id}-{number}", url=entry.triton_grpc_url,
            )  # fmt: skip
            vectors[rows] = pooled[self.pooling]

        try:
            async with asyncio.TaskGroup() as group:
                for number, (rows, length) in enumerate(sent):
                    group.create_task(run(number, rows, length))
        except BaseExceptionGroup as failed:
            # The first batch's failure is the request's (the others were cancelled).
            raise failed.exceptions[0] from None
        return vectors


def batches(
    sequences: list[list[int]], buckets: tuple[int, ...], max_batch_size: int
) -> list[tuple[list[int], int]]:
    """Row indices grouped by padded length, at most `max_batch_size` rows each."""
    by_length: dict[int, list[int]] = {}
    for row, sequence in enumerate(sequences):
        length = next(bucket for bucket in buckets if len(sequence) <= bucket)
        by_length.setdefault(length, []).append(row)
    return [
        (rows[start : start + max_batch_size], length)
        for length, rows in sorted(by_length.items())
        for start in range(0, len(rows), max_batch_size)
    ]


def padded_batch(
    sequences: list[list[int]], length: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """The model's two inputs for sequences padded to `length`."""
    input_ids = np.zeros((len(sequences), length), np.int32)
    mask = np.zeros_like(input_ids)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return input_ids, mask


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: Vectors
    """(inputs, dimensions), unit length."""
    pooling: str
    usage: Usage


class EmbeddingGone(Exception):
    """The client disconnected before its vectors were ready."""


class EmbeddingRun:
    """One admitted embedding request: its vectors, read once."""

    def __init__(
        self,
        prepared: PreparedEmbedding,
        tracker: RunTracker,
        headers: dict[str, str],
    ) -> None:
        self._prepared = prepared
        self._tracker = tracker
        self.headers = headers
        self.model = prepared.entry.name

    async def result(self, client_gone: Callable[[], Awaitable[None]]) -> EmbeddingResult:
        """The vectors; a client that leaves first cancels the backend calls, and its
        request is recorded as cancelled."""
        status = RunStatus.CLIENT_CANCELLED
        computing = asyncio.ensure_future(self._prepared.vectors())
        watching = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait((computing, watching), return_when=asyncio.FIRST_COMPLETED)
            if computing.done():
                vectors = computing.result()
                status = RunStatus.OK
        except (BackendError, BackendUnavailable) as error:
            status = RunStatus.BACKEND_ERROR
            kind = "unavailable" if isinstance(error, BackendUnavailable) else "error"
            self._tracker.metrics.backend_errors.labels(self.model, kind).inc()
            raise backend_api_error(error) from error
        finally:
            watching.cancel()
            computing.cancel()
            with anyio.CancelScope(shield=True):
                await self._tracker.finish(status)
        if status is not RunStatus.OK:
            raise EmbeddingGone
        prepared = self._prepared
        usage = Usage(prepared.prompt_tokens, 0, prepared.prompt_tokens)
        return EmbeddingResult(vectors, prepared.pooling, usage)
