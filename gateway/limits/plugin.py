"""Wires limits into the app: the counter store (Redis or memory) lives as long as the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from gateway.db.engine import DatabasePlugin
from gateway.limits.service import LimitsService
from gateway.limits.store import LimitStore, MemoryLimitStore, RedisLimitStore
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import LimitSettings


class LimitsPlugin(InitPluginProtocol):
    def __init__(
        self,
        settings: LimitSettings,
        redis_url: str | None,
        database: DatabasePlugin,
        metrics: GatewayMetrics,
    ) -> None:
        self._settings = settings
        self._redis_url = redis_url
        self._database = database
        self._metrics = metrics
        self._service: LimitsService | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies["limits"] = Provide(self.service, sync_to_thread=False)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        store: LimitStore = (
            RedisLimitStore(self._redis_url) if self._redis_url else MemoryLimitStore()
        )
        self._service = LimitsService(store, self._settings, self._database.sessions, self._metrics)
        try:
            yield
        finally:
            self._service = None
            await store.close()

    def service(self) -> LimitsService:
        if self._service is None:
            raise RuntimeError("limits exist only while the app runs")
        return self._service
