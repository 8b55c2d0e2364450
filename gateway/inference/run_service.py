"""One run's admission, whichever API asked for it: admit → parse and prepare → reserve →
record, then the run.

`RunService.start` makes every refusal, in a fixed order, before the backend sees anything,
and hands the route a `Run`; a refusal still leaves a usage record and a metric.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import ApiError
from gateway.inference.api import Api
from gateway.inference.embeddings import EmbeddingRun, PreparedEmbedding
from gateway.inference.request_ids import request_id_headers
from gateway.inference.run import Run
from gateway.inference.run_request import RequestParser, RunRequest
from gateway.inference.service import InferenceService
from gateway.inference.tracking import RunTracker
from gateway.limits.service import LimitsService
from gateway.metrics.registry import GatewayMetrics
from gateway.tokens.auth import Caller
from gateway.usage.meter import UsageMeter
from gateway.usage.status import RunStatus

UNKNOWN_MODEL = "unknown"
"""The metric label and the usage record's model of a model the catalog does not have:
labels stay bounded, and a client's text never reaches operators' usage reports."""


class RunService:
    """The run's steps, in the order a request is refused: the request rate, the model and
    the request for its task, the token budgets and concurrency, a usage record; then the run.
    """

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
        self,
        caller: Caller,
        api: Api,
        parser: RequestParser,
        client_request_id: str | None = None,
    ) -> Run | EmbeddingRun:
        """The admitted run, or the `ApiError` that refuses it, recorded and counted.

        The run's id is always minted here, never the client's: it keys the usage record,
        the concurrency lease and the backend request that a stop targets.
        """
        request_id = uuid.uuid4().hex
        ids = request_id_headers(request_id, client_request_id)
        limits = self._limits
        known = self._inference.catalog.get(parser.model)
        label = parser.model if known is not None else UNKNOWN_MODEL
        task = known.task_label if known is not None else UNKNOWN_MODEL
        refused = _Refusals(
            self._meter, self._metrics, caller, request_id, client_request_id, label, api, task
        )
        with refused.as_status(RunStatus.RATE_LIMITED, ids):
            admission = await limits.admit_request(caller.account_id, request_id)
        headers = admission.headers
        headers.update(ids)
        with refused.as_status(RunStatus.REJECTED, headers):
            entry = self._inference.entry(parser.model)
            request = parser.parse(entry)
            prepared = await self._inference.prepare(entry, request, request_id)
        prompt_tokens = prepared.prompt_tokens
        with refused.as_status(RunStatus.RATE_LIMITED, headers):
            await limits.admit_generation(admission, prompt_tokens + prepared.max_tokens)
        model = entry.name
        try:
            metered = self._meter.open(
                request_id, caller.account_id, caller.token_id, model, prompt_tokens,
                client_request_id=client_request_id,
            )  # fmt: skip
        except ApiError as error:
            await limits.settle(admission, 0)
            error.headers.update(headers)
            raise
        tracker = RunTracker(
            model, api, entry.task_label, caller.account_id, prompt_tokens, admission, metered,
            limits, self._metrics,
        )  # fmt: skip
        if isinstance(prepared, PreparedEmbedding):
            return EmbeddingRun(prepared, tracker, headers)
        assert isinstance(request, RunRequest)
        return Run(prepared, request, tracker, headers)

    async def start_generation(
        self, caller: Caller, api: Api, parser: RequestParser, client_request_id: str | None
    ) -> Run:
        """`start` for a parser that reads text generations alone."""
        run = await self.start(caller, api, parser, client_request_id)
        assert isinstance(run, Run)
        return run

    async def start_embedding(
        self, caller: Caller, api: Api, parser: RequestParser, client_request_id: str | None
    ) -> EmbeddingRun:
        """`start` for a parser that reads text embeddings alone."""
        run = await self.start(caller, api, parser, client_request_id)
        assert isinstance(run, EmbeddingRun)
        return run


class _Refusals:
    """Requests refused before the backend still leave a usage record and a metric."""

    def __init__(
        self,
        meter: UsageMeter,
        metrics: GatewayMetrics,
        caller: Caller,
        request_id: str,
        client_request_id: str | None,
        model_label: str,
        api: Api,
        task_label: str,
    ) -> None:
        self._meter = meter
        self._metrics = metrics
        self._caller = caller
        self._request_id = request_id
        self._client_request_id = client_request_id
        self._model_label = model_label
        self._api = api
        self._task_label = task_label

    @contextmanager
    def as_status(self, status: RunStatus, headers: dict[str, str]) -> Iterator[None]:
        """An ApiError raised in the block is recorded with `status` and re-raised, carrying
        `headers` beneath its own."""
        try:
            yield
        except ApiError as error:
            error.headers = {**headers, **error.headers}
            self._meter.record_refusal(
                self._request_id, self._caller.account_id, self._caller.token_id,
                self._model_label, status, client_request_id=self._client_request_id,
            )  # fmt: skip
            self._metrics.requests.labels(
                self._model_label, self._api, self._task_label, status
            ).inc()
            raise


def provide_runs(
    inference: InferenceService,
    limits: LimitsService,
    meter: UsageMeter,
    metrics: GatewayMetrics,
) -> RunService:
    return RunService(inference, limits, meter, metrics)
