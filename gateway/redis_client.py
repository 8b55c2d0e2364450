"""The Redis client the app's features share the settings of (limits, token revocations)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.settings import RedisSettings


def redis_client(url: str, settings: RedisSettings) -> Redis:
    """Bounded waits everywhere: redis-py's defaults have no timeouts and retry ten times."""
    return Redis.from_url(
        url,
        socket_connect_timeout=settings.connect_timeout_seconds,
        socket_timeout=settings.socket_timeout_seconds,
        health_check_interval=settings.health_check_interval_seconds,
        retry=Retry(NoBackoff(), settings.retries, supported_errors=(RedisConnectionError,)),
    )
