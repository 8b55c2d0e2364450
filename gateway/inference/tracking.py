"""What one admitted run reports as it goes: its usage record, its limits, its metrics.

The generation calls `sent()` only for tokens whose event was handed to the client's
connection, so the usage record, the limits' settlement and the token counters all agree with
what the client was sent, however the run ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.inference.api import Api
from gateway.limits.service import Admission, LimitsService
from gateway.metrics.registry import GatewayMetrics
from gateway.usage.meter import MeteredRequest
from gateway.usage.status import RunStatus


@dataclass
class RunTracker:
    model: str
    api: Api
    task: str
    """The request metric's `task` label."""
    account_id: str
    prompt_tokens: int
    admission: Admission
    metered: MeteredRequest
    limits: LimitsService
    metrics: GatewayMetrics
    arrived_at: float = field(default_factory=time.perf_counter)
    completion_tokens: int = 0
    _last_sent_at: float | None = None
    _finished: bool = False

    def __post_init__(self) -> None:
        self.metrics.active_streams.labels(self.model).inc()

    def sent(self, completion_tokens: int) -> None:
        """The client's connection has taken every token up to `completion_tokens`."""
        if completion_tokens == self.completion_tokens:
            return
        now = time.perf_counter()
        if self._last_sent_at is None:
            self.metrics.time_to_first_token.labels(self.model).observe(now - self.arrived_at)
            self.metered.first_token()
        else:
            self.metrics.inter_token_latency.labels(self.model).observe(
                (now - self._last_sent_at) / (completion_tokens - self.completion_tokens)
            )
        self._last_sent_at = now
        self.completion_tokens = completion_tokens
        self.metered.tokens_sent(completion_tokens)

    async def release_limits(self, completion_tokens: int) -> None:
        """Settle the limits before the last event goes out: a client that sends its next
        request the moment it reads `[DONE]` must find its concurrency slot free."""
        await self.limits.settle(self.admission, self.prompt_tokens + completion_tokens)

    async def finish(self, status: RunStatus) -> None:
        if self._finished:
            return
        self._finished = True
        self.metered.finish(status)
        metrics = self.metrics
        metrics.active_streams.labels(self.model).dec()
        metrics.requests.labels(self.model, self.api, self.task, status).inc()
        metrics.request_duration.labels(self.model).observe(time.perf_counter() - self.arrived_at)
        metrics.count_tokens(
            self.model, self.account_id, self.prompt_tokens, self.completion_tokens
        )
        await self.limits.settle(self.admission, self.prompt_tokens + self.completion_tokens)
