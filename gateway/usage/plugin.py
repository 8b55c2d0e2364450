"""Wires metering into the app: the meter and its writer live as long as the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from gateway.clock import Clock
from gateway.db.engine import DatabasePlugin
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import UsageSettings
from gateway.usage.meter import Meter, UsageMeter
from gateway.usage.routes import AccountUsageController


class UsagePlugin(InitPluginProtocol):
    def __init__(
        self,
        settings: UsageSettings,
        database: DatabasePlugin,
        metrics: GatewayMetrics,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._database = database
        self._metrics = metrics
        self._clock = clock
        self._meter: UsageMeter | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(AccountUsageController)
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies["meter"] = Provide(self.meter, sync_to_thread=False)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Starts after the database and stops before it: the last batch is written on exit."""
        if not self._settings.enabled:
            self._meter = UsageMeter(self._clock)
            yield
            return
        settings = self._settings
        meter = Meter(
            self._database.sessions,
            settings.journal_dir,
            settings.max_pending,
            settings.flush_interval_seconds,
            settings.batch_size,
            self._metrics,
            self._clock,
        )
        await meter.start()
        self._meter = meter
        try:
            yield
        finally:
            await meter.stop()

    def meter(self) -> UsageMeter:
        if self._meter is None:
            raise RuntimeError("the meter exists only while the app runs")
        return self._meter
