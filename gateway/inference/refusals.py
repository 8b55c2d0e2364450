"""Requests refused before the backend still leave a usage record and a metric."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import ApiError
from gateway.inference.service import InferenceService
from gateway.metrics.registry import GatewayMetrics
from gateway.tokens.auth import Caller
from gateway.usage.meter import UsageMeter

UNKNOWN_MODEL = "unknown"


class RefusalRecorder:
    def __init__(
        self,
        meter: UsageMeter,
        metrics: GatewayMetrics,
        caller: Caller,
        request_id: str,
        model: str,
        inference: InferenceService,
    ) -> None:
        self._meter = meter
        self._metrics = metrics
        self._caller = caller
        self._request_id = request_id
        self._model = model
        known = inference.catalog.get(model) is not None
        self._model_label = model if known else UNKNOWN_MODEL

    @contextmanager
    def as_status(self, status: str, headers: dict[str, str] | None = None) -> Iterator[None]:
        """An ApiError raised in the block is recorded with `status` and re-raised."""
        try:
            yield
        except ApiError as error:
            if headers:
                error.headers = {**headers, **error.headers}
            self._meter.record_refusal(
                self._request_id, self._caller.account_id, self._caller.token_id, self._model,
                status,
            )  # fmt: skip
            self._metrics.requests.labels(self._model_label, status).inc()
            raise
