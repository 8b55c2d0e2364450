"""One run, whichever API asked for it: admit → prepare → generate → settle and meter.

`RunService.start` makes every refusal, in a fixed order, before the backend sees anything,
and hands the route a `Run`. The run reads the backend, turns token ids into text, ends the
text at a stop string, and keeps the usage record, the limits and the metrics in step with
what the client was sent. Each API's encoder turns the run's result or events into its own
wire format; nothing here knows one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import anyio

from gateway.errors import ApiError
from gateway.inference.api import Api
from gateway.inference.errors import backend_api_error
from gateway.inference.schemas import Usage
from gateway.inference.service import Generation, InferenceService, RunRequest
from gateway.inference.stop_strings import StopStrings
from gateway.inference.streaming import Heartbeat, with_heartbeats
from gateway.inference.tokenization import ModelTokenizer
from gateway.inference.tracking import RunTracker
from gateway.inference.triton import BackendError, BackendUnavailable
from gateway.limits.service import LimitsService
from gateway.metrics.registry import GatewayMetrics
from gateway.tokens.auth import Caller
from gateway.usage.meter import UsageMeter
from gateway.usage.status import RunStatus

UNKNOWN_MODEL = "unknown"
"""The metric label and the usage record's model of a model the catalog does not have:
labels stay bounded, and a client's text never reaches operators' usage reports."""


class FinishReason(StrEnum):
    STOP = "stop"
    """The model ended its answer, or a stop string matched."""
    LENGTH = "length"
    """The answer reached `max_tokens`."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready; nobody is left to answer."""


class TextPiece(NamedTuple):
    text: str
    tokens: int
    """Completion tokens received up to this piece (the Workers AI event's `id`)."""


@dataclass(frozen=True)
class TextDelta:
    """Text that arrived together (one write to the client)."""

    pieces: list[TextPiece]


@dataclass(frozen=True)
class RunEnd:
    pieces: list[TextPiece]
    """The last text, held back until the generation ended (possibly none)."""
    usage: Usage
    finish_reason: FinishReason


@dataclass(frozen=True)
class RunFailed:
    """The backend failed after the stream began: the last event the client gets."""

    error: ApiError


RunEvent = TextDelta | Heartbeat | RunEnd | RunFailed


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: FinishReason


class _Decoding:
    """Token ids to text pieces for one generation, ended early by a stop string."""

    def __init__(self, tokenizer: ModelTokenizer, stop: tuple[str, ...], max_tokens: int) -> None:
        self._detokenizer = tokenizer.detokenizer()
        self._stop = StopStrings(stop) if stop else None
        self._max_tokens = max_tokens
        self.received = 0
        """Tokens taken, up to the one that completed a stop string: those are billed."""

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.matched

    def take(self, token_ids: Iterable[int]) -> list[TextPiece]:
        pieces = []
        for token_id in token_ids:
            self.received += 1
            text = self._detokenizer.step(token_id)
            if text and self._stop is not None:
                text = self._stop.feed(text)
            if text:
                pieces.append(TextPiece(text, self.received))
            if self.stopped:
                break
        return pieces

    def finish(self) -> list[TextPiece]:
        """The text held back once the generation has ended."""
        if self.stopped:
            return []
        text = self._detokenizer.finish()
        if self._stop is not None:
            text = self._stop.feed(text) if text else ""
            if not self._stop.matched:
                text += self._stop.flush()
        return [TextPiece(text, self.received)] if text else []

    @property
    def finish_reason(self) -> FinishReason:
        if self.stopped or self.received < self._max_tokens:
            return FinishReason.STOP
        return FinishReason.LENGTH


class Run:
    """One admitted run: read it whole (`complete`) or as events (`events`), once."""

    def __init__(
        self,
        generation: Generation,
        tracker: RunTracker,
        headers: dict[str, str],
        stop: tuple[str, ...],
    ) -> None:
        self._generation = generation
        self._tracker = tracker
        self._stop = stop
        self.headers = headers
        """`x-request-id` and the rate-limit headers: every response of the run carries them."""
        self.request_id = generation.request_id
        self.model = generation.entry.name
        self.created = int(time.time())
        self.prompt_tokens = len(generation.input_ids)

    def _usage(self, completion_tokens: int) -> Usage:
        return Usage(self.prompt_tokens, completion_tokens, self.prompt_tokens + completion_tokens)

    def _decoding(self) -> _Decoding:
        generation = self._generation
        return _Decoding(generation.tokenizer, self._stop, generation.max_tokens)

    def _backend_failed(self, error: BackendError | BackendUnavailable) -> ApiError:
        kind = "unavailable" if isinstance(error, BackendUnavailable) else "error"
        self._tracker.metrics.backend_errors.labels(self.model, kind).inc()
        return backend_api_error(error)

    async def complete(self, client_gone: Callable[[], Awaitable[None]]) -> Completion:
        """The whole answer; a client that leaves first cancels the generation.

        Its tokens were never sent, so such a run is billed no completion tokens.
        """
        decoding = self._decoding()
        texts: list[str] = []
        tokens = self._generation.token_ids()
        tracker = self._tracker
        status = RunStatus.CLIENT_CANCELLED

        async def collect() -> None:
            async for token_id in tokens:
                texts.extend(piece.text for piece in decoding.take((token_id,)))
                if decoding.stopped:
                    return

        collecting = asyncio.ensure_future(collect())
        watching = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait((collecting, watching), return_when=asyncio.FIRST_COMPLETED)
            if collecting.done():
                collecting.result()
                status = RunStatus.OK
        except (BackendError, BackendUnavailable) as error:
            status = RunStatus.BACKEND_ERROR
            raise self._backend_failed(error) from error
        finally:
            watching.cancel()
            collecting.cancel()
            tokens.cancel()
            if status is RunStatus.OK:
                tracker.sent(decoding.received)
            with anyio.CancelScope(shield=True):
                await tracker.finish(status)
        if status is not RunStatus.OK:
            raise ClientGone
        texts.extend(piece.text for piece in decoding.finish())
        return Completion("".join(texts), self._usage(decoding.received), decoding.finish_reason)

    async def events(self, keepalive_seconds: float) -> AsyncGenerator[RunEvent, None]:
        """The run as events; a backend failure before the first event raises, after it is
        `RunFailed`. A heartbeat marks `keepalive_seconds` of the model's silence.

        Tokens count as sent when the consumer asks for the next event, i.e. once the event
        carrying them was handed to the connection; an event the connection never took is not
        billed. A matched stop string stops the backend at once, not when the end is taken.
        """
        decoding = self._decoding()
        tracker = self._tracker
        started = False
        status = RunStatus.CLIENT_CANCELLED
        items = with_heartbeats(self._generation.token_ids(), keepalive_seconds)
        try:
            async for batch in items:
                if isinstance(batch, Heartbeat):
                    started = True
                    yield batch
                    continue
                pieces = decoding.take(batch)
                if pieces:
                    started = True
                    yield TextDelta(pieces)
                    tracker.sent(pieces[-1].tokens)
                if decoding.stopped:
                    await items.aclose()
                    break
            last = decoding.finish()
            await tracker.release_limits(decoding.received)
            yield RunEnd(last, self._usage(decoding.received), decoding.finish_reason)
            tracker.sent(decoding.received)
            status = RunStatus.OK
        except (BackendError, BackendUnavailable) as error:
            status = RunStatus.BACKEND_ERROR
            api_error = self._backend_failed(error)
            if not started:
                raise api_error from error
            yield RunFailed(api_error)
        finally:
            with anyio.CancelScope(shield=True):
                await items.aclose()
                await tracker.finish(status)


class RunService:
    """The run's steps, in the order a request is refused: the request rate, the model and
    its limits, the token budgets and concurrency, a usage record; then the run."""

    def __init__(
        self,
        inference: InferenceService,
        limits: LimitsService,
        meter: UsageMeter,
        metrics: GatewayMetrics,
    ) -> None:
        self._inference = inference
        self._limits = limits
        self._meter = meter
        self._metrics = metrics

    async def start(
        self, caller: Caller, api: Api, model: str, describe: Callable[[], RunRequest]
    ) -> Run:
        """The admitted run, or the `ApiError` that refuses it, recorded and counted.

        `describe` reads the API's body into a `RunRequest`, or refuses it (400): it is
        called at the model's step, so such a refusal is recorded like the model's own.
        """
        request_id = uuid.uuid4().hex
        limits = self._limits
        label = model if self._inference.known(model) else UNKNOWN_MODEL
        refused = _Refusals(self._meter, self._metrics, caller, request_id, label, api)
        with refused.as_status(RunStatus.RATE_LIMITED):
            admission = await limits.admit_request(caller.account_id, request_id)
        with refused.as_status(RunStatus.REJECTED, admission.headers):
            request = describe()
            generation = await self._inference.prepare(request, request_id)
        prompt_tokens = len(generation.input_ids)
        with refused.as_status(RunStatus.RATE_LIMITED):
            await limits.admit_generation(admission, prompt_tokens + generation.max_tokens)
        model = generation.entry.name
        try:
            metered = self._meter.open(
                request_id, caller.account_id, caller.token_id, model, prompt_tokens
            )
        except ApiError as error:
            await limits.settle(admission, 0)
            error.headers.update(admission.headers)
            raise
        tracker = RunTracker(
            model, api, caller.account_id, prompt_tokens, admission, metered, limits,
            self._metrics,
        )  # fmt: skip
        return Run(generation, tracker, admission.headers, request.stop)


class _Refusals:
    """Requests refused before the backend still leave a usage record and a metric."""

    def __init__(
        self,
        meter: UsageMeter,
        metrics: GatewayMetrics,
        caller: Caller,
        request_id: str,
        model_label: str,
        api: Api,
    ) -> None:
        self._meter = meter
        self._metrics = metrics
        self._caller = caller
        self._request_id = request_id
        self._model_label = model_label
        self._api = api

    @contextmanager
    def as_status(self, status: RunStatus, headers: dict[str, str] | None = None) -> Iterator[None]:
        """An ApiError raised in the block is recorded with `status` and re-raised."""
        try:
            yield
        except ApiError as error:
            if headers:
                error.headers = {**headers, **error.headers}
            self._meter.record_refusal(
                self._request_id, self._caller.account_id, self._caller.token_id,
                self._model_label, status,
            )  # fmt: skip
            self._metrics.requests.labels(self._model_label, self._api, status).inc()
            raise


def provide_runs(
    inference: InferenceService,
    limits: LimitsService,
    meter: UsageMeter,
    metrics: GatewayMetrics,
) -> RunService:
    return RunService(inference, limits, meter, metrics)
