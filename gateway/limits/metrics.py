"""What the limits export about their store: how often Redis was not there, and what it cost."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

OUTCOMES = ("refused", "fallback", "settlement_lost")


class LimitStoreMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.store_unavailable = Counter(
            "gateway_limit_store_unavailable",
            "Limit checks that could not reach Redis, by outcome: refused (503), fallback "
            "(admitted on this replica's own counters), settlement_lost (token refund lost)",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.store_unavailable.labels(outcome)
