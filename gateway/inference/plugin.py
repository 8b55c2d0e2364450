"""Wires inference into the app: the Triton client's lifespan and the services routes take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from gateway.inference.catalog import load_catalog
from gateway.inference.run_service import provide_runs
from gateway.inference.service import InferenceService, InputBounds
from gateway.inference.streaming import StreamSettings
from gateway.metrics.registry import GatewayMetrics
from gateway.triton.client import TritonClient


class InferencePlugin(InitPluginProtocol):
    """Owns the Triton gRPC channels and the tokenizers for the app's lifetime."""

    def __init__(
        self,
        triton_grpc_url: str,
        catalog_file: Path | None,
        model_repository: Path,
        stream_settings: StreamSettings,
        metrics: GatewayMetrics,
        input_bounds: InputBounds,
    ) -> None:
        self._metrics = metrics
        self._input_bounds = input_bounds
        self._triton_grpc_url = triton_grpc_url
        self._catalog_file = catalog_file
        self._model_repository = model_repository
        self.stream_settings = stream_settings
        self._service: InferenceService | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies["inference"] = Provide(self.service, sync_to_thread=False)
        app_config.dependencies["runs"] = Provide(provide_runs, sync_to_thread=False)
        app_config.dependencies["stream_settings"] = Provide(
            self._stream_settings, sync_to_thread=False
        )
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        catalog = load_catalog(self._catalog_file, self._model_repository)
        self._metrics.know_models({entry.name: entry.task_label for entry in catalog})
        generator = TritonClient(self._triton_grpc_url)
        self._service = InferenceService.from_catalog(catalog, generator, self._input_bounds)
        try:
            yield
        finally:
            self._service = None
            await generator.close()

    def service(self) -> InferenceService:
        if self._service is None:
            raise RuntimeError("the inference service exists only while the app runs")
        return self._service

    def _stream_settings(self) -> StreamSettings:
        return self.stream_settings

    async def ready(self) -> bool:
        """Readiness: every catalog model is loaded and ready in its Triton."""
        return self._service is not None and await self._service.models_ready()
