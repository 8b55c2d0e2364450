"""Wires limits into the app: the counter store (Redis, behind its failover, or memory) lives as
long as the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from gateway.clock import Clock
from gateway.db.engine import DatabasePlugin
from gateway.health.routes import ReadinessCheck
from gateway.limits.failover import FailoverLimitStore
from gateway.limits.metrics import LimitStoreMetrics
from gateway.limits.service import LimitsService
from gateway.limits.store import LimitStore, MemoryLimitStore, RedisLimitStore
from gateway.metrics.registry import GatewayMetrics
from gateway.redis_client import redis_client
from gateway.settings import LimitSettings, RedisSettings


class LimitsPlugin(InitPluginProtocol):
    def __init__(
        self,
        settings: LimitSettings,
        redis_url: str | None,
        redis_settings: RedisSettings,
        database: DatabasePlugin,
        metrics: GatewayMetrics,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._redis_url = redis_url
        self._redis_settings = redis_settings
        self._database = database
        self._metrics = metrics
        self._clock = clock
        self._store_metrics = LimitStoreMetrics(metrics.registry)
        self._service: LimitsService | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies["limits"] = Provide(self.service, sync_to_thread=False)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        clock = self._clock
        store: LimitStore = (
            FailoverLimitStore(
                RedisLimitStore(redis_client(self._redis_url, self._redis_settings), clock),
                MemoryLimitStore(clock) if self._settings.local_fallback else None,
                self._store_metrics,
            )
            if self._redis_url
            else MemoryLimitStore(clock)
        )
        self._service = LimitsService(
            store, self._settings, self._database.sessions, self._metrics, clock
        )
        try:
            yield
        finally:
            self._service = None
            await store.close()

    def service(self) -> LimitsService:
        if self._service is None:
            raise RuntimeError("limits exist only while the app runs")
        return self._service

    @property
    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """`redis` when limits live there; in-process limits have nothing to check."""
        return {"redis": self.ready} if self._redis_url else {}

    @property
    def degradable_checks(self) -> frozenset[str]:
        """With the local fallback on, a replica serves without Redis: degraded, not unready."""
        return (
            frozenset({"redis"})
            if self._redis_url and self._settings.local_fallback
            else frozenset()
        )

    async def ready(self) -> bool:
        return await self.service().ready()
