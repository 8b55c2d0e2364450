"""Wires authentication into the app: the token verifier, the failed-authentication
throttle, and the revocation channel whose subscriber lives as long as the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from gateway.metrics.registry import GatewayMetrics
from gateway.redis_client import redis_client
from gateway.settings import RedisSettings, SecuritySettings
from gateway.tokens.auth import TokenVerifier
from gateway.tokens.revocations import RevocationChannel
from gateway.tokens.throttle import AuthenticationThrottle


class TokensPlugin(InitPluginProtocol):
    def __init__(
        self,
        settings: SecuritySettings,
        redis_url: str | None,
        redis_settings: RedisSettings,
        metrics: GatewayMetrics,
    ) -> None:
        self.throttle = AuthenticationThrottle(settings.auth_failures_per_minute, metrics)
        self.verifier = TokenVerifier(settings.token_cache_seconds, self.throttle)
        self._redis_url = redis_url
        self._redis_settings = redis_settings
        self.revocations = RevocationChannel(self.verifier, None)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies["token_verifier"] = Provide(
            lambda: self.verifier, sync_to_thread=False
        )
        app_config.dependencies["revocations"] = Provide(
            lambda: self.revocations, sync_to_thread=False
        )
        return app_config

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        if self._redis_url is None:
            yield
            return
        redis = redis_client(self._redis_url, self._redis_settings)
        self.revocations = RevocationChannel(self.verifier, redis)
        listener = asyncio.create_task(self.revocations.listen(), name="token-revocations")
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await redis.aclose()
