"""Every metric the gateway exports, in one registry owned by the app (not the global one).

Labels are bounded: `model` is a catalog name (unknown models are counted as `unknown`),
`status` one of the usage statuses, `limit` one of the four limits. Per-account token counters
exist only when the operator turns them on (`GATEWAY_METRICS_PER_ACCOUNT`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from gateway.inference.api import Api
from gateway.metrics.event_loop import pending_timers, running_tasks
from gateway.usage.status import SERVED_STATUSES

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TOKEN_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
LIMITS = ("requests_per_minute", "tokens_per_minute", "concurrent_streams", "monthly_quota")
FLUSH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
AUTH_FAILURE_REASONS = (
    "missing",
    "malformed",
    "invalid",
    "revoked",
    "expired",
    "other_account",
    "admin_token",
    "throttled",
)


class GatewayMetrics:
    def __init__(self, *, per_account: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Runs, by model, API (workers_ai, openai), task (text_generation, text_embeddings) "
            "and outcome (the usage record's status)",
            ["model", "api", "task", "status"],
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "From the request's arrival to the first generated text sent to the client",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inter_token_latency = Histogram(
            "gateway_inter_token_latency_seconds",
            "Between consecutive text events of a stream, per token",
            ["model"],
            buckets=TOKEN_LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "From the request's arrival to its last byte (end-to-end latency)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "gateway_prompt_tokens",
            "Prompt tokens sent to the backend",
            ["model"],
            registry=registry,
        )
        self.completion_tokens = Counter(
            "gateway_completion_tokens",
            "Completion tokens sent to clients (what is billed)",
            ["model"],
            registry=registry,
        )
        self.account_tokens = (
            Counter(
                "gateway_account_tokens",
                "Tokens by account and kind (prompt, completion); operator-enabled",
                ["account", "kind"],
                registry=registry,
            )
            if per_account
            else None
        )
        self.active_streams = Gauge(
            "gateway_active_streams",
            "Generations in progress (streamed or not)",
            ["model"],
            registry=registry,
        )
        self.backend_errors = Counter(
            "gateway_backend_errors",
            "Backend failures: unavailable (no answer) or error (failed a request)",
            ["model", "kind"],
            registry=registry,
        )
        self.rate_limit_rejections = Counter(
            "gateway_rate_limit_rejections",
            "Requests refused with 429, by the limit that refused them",
            ["limit"],
            registry=registry,
        )
        for limit in LIMITS:
            self.rate_limit_rejections.labels(limit)
        self.auth_failures = Counter(
            "gateway_auth_failures",
            "Refused authentications (account and admin API), by reason; `throttled`: refused "
            "unchecked, the client address having failed too often",
            ["reason"],
            registry=registry,
        )
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)
        self.usage_queue_depth = Gauge(
            "gateway_usage_queue_depth",
            "Finished usage records waiting to be written to the database",
            registry=registry,
        )
        self.usage_flush_duration = Histogram(
            "gateway_usage_flush_duration_seconds",
            "Time to write one batch of usage records",
            buckets=FLUSH_BUCKETS,
            registry=registry,
        )
        self.usage_flush_failures = Counter(
            "gateway_usage_flush_failures",
            "Batches of usage records the database refused (retried)",
            registry=registry,
        )
        self.usage_records_dropped = Counter(
            "gateway_usage_records_dropped",
            "Usage records the database refuses to store (logged in full, not retried)",
            registry=registry,
        )
        self.event_loop_tasks = Gauge(
            "gateway_event_loop_tasks",
            "Tasks on the serving event loop; back to its idle level once traffic stops",
            registry=registry,
        )
        self.event_loop_tasks.set_function(running_tasks)
        self.event_loop_timers = Gauge(
            "gateway_event_loop_timers",
            "Timers armed on the serving event loop; back to its idle level once traffic stops",
            registry=registry,
        )
        self.event_loop_timers.set_function(pending_timers)
        # process_open_fds, process_resident_memory_bytes, process_cpu_seconds_total, …
        ProcessCollector(registry=registry)

    def know_models(self, models: dict[str, str]) -> None:
        """Start every catalog model's series at zero, so that rates and ratios exist (and
        alerts can fire) before the first error of a kind; `models`: each one's task label."""
        for model, task in models.items():
            for api in Api:
                for status in SERVED_STATUSES:
                    self.requests.labels(model, api, task, status)
            for kind in ("unavailable", "error"):
                self.backend_errors.labels(model, kind)
            self.active_streams.labels(model)
            self.prompt_tokens.labels(model)
            self.completion_tokens.labels(model)

    def count_tokens(self, model: str, account_id: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(model).inc(prompt)
        self.completion_tokens.labels(model).inc(completion)
        if self.account_tokens is not None:
            self.account_tokens.labels(account_id, "prompt").inc(prompt)
            self.account_tokens.labels(account_id, "completion").inc(completion)
