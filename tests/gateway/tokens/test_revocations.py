"""The revocation channel: a revocation is refused on the replica that made it at once, reaches
the others through Redis (the shared one on 6379: only its channel is used), and a replica
that (re)subscribes forgets what it had cached. Without Redis, or with Redis down, the local
refusal still holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.metrics.registry import GatewayMetrics
from gateway.redis_client import redis_client
from gateway.settings import RedisSettings
from gateway.tokens import revocations
from gateway.tokens.auth import TokenVerifier
from gateway.tokens.revocations import RevocationChannel
from gateway.tokens.throttle import AuthenticationFailed, AuthenticationThrottle
from tests.gateway.tokens.issued import Issued, Sessions, issue, revoke_in_database

SHARED_REDIS = "redis://127.0.0.1:6379/0"
NOBODY_LISTENING = "redis://127.0.0.1:1/0"
WAIT = 2.0
"""Longest a test waits for Redis to deliver (it takes milliseconds)."""


class HearingVerifier(TokenVerifier):
    """A real verifier that also lets a test wait until it hears of one revocation (the
    shared channel may carry other tests' revocations too)."""

    def __init__(self, cache_seconds: float = 60.0) -> None:
        super().__init__(cache_seconds, AuthenticationThrottle(0, GatewayMetrics()))
        self.awaited: str | None = None
        self.heard = asyncio.Event()

    def revoked(self, token_id: str) -> None:
        super().revoked(token_id)
        if token_id == self.awaited:
            self.heard.set()


class Warnings(logging.Handler):
    """Lets a test wait for the gateway's `count`-th warning."""

    def __init__(self, count: int) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.enough = asyncio.Event()
        self._count = count

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if len(self.messages) >= self._count:
            self.enough.set()


@pytest.fixture
async def shared_redis() -> AsyncIterator[Redis]:
    redis = redis_client(SHARED_REDIS, RedisSettings(retries=0))
    yield redis
    await redis.aclose()


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[Redis]:
    redis = redis_client(NOBODY_LISTENING, RedisSettings(retries=0))
    yield redis
    await redis.aclose()


async def verdict(verifier: TokenVerifier, token: Issued, sessions: Sessions) -> str:
    """The reason the verifier refused the token, or "accepted"."""
    try:
        await verifier.verify(token.secret, token.account_id, sessions)
    except AuthenticationFailed as refused:
        return refused.reason
    return "accepted"


async def listening(channel: RevocationChannel) -> asyncio.Task[None]:
    listener = asyncio.create_task(channel.listen())
    await asyncio.wait_for(channel.subscribed.wait(), WAIT)
    return listener


async def stop(listener: asyncio.Task[None]) -> None:
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listener


async def test_without_redis_an_announced_revocation_is_refused_here_at_once(
    sessions: Sessions,
) -> None:
    token = await issue(sessions)
    verifier = HearingVerifier()
    await verifier.verify(token.secret, token.account_id, sessions)

    await RevocationChannel(verifier, None).announce(token.token_id)

    assert await verdict(verifier, token, sessions) == "revoked"


async def test_without_redis_there_is_nothing_to_listen_to() -> None:
    channel = RevocationChannel(HearingVerifier(), None)

    await asyncio.wait_for(channel.listen(), WAIT)

    assert not channel.subscribed.is_set()


async def test_a_revocation_that_cannot_be_published_is_refused_here_and_logged(
    sessions: Sessions, unreachable_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    token = await issue(sessions)
    verifier = HearingVerifier()
    await verifier.verify(token.secret, token.account_id, sessions)

    with caplog.at_level(logging.WARNING, logger="gateway"):
        await RevocationChannel(verifier, unreachable_redis).announce(token.token_id)

    assert await verdict(verifier, token, sessions) == "revoked"
    [warning] = caplog.messages
    assert warning.startswith(f"token {token.token_id} revoked, but other replicas could not be")


async def test_a_revocation_announced_by_another_replica_is_refused_here(
    sessions: Sessions, shared_redis: Redis
) -> None:
    token = await issue(sessions)
    here, there = HearingVerifier(), HearingVerifier()
    await here.verify(token.secret, token.account_id, sessions)
    listener = await listening(RevocationChannel(here, shared_redis))
    here.awaited = token.token_id

    try:
        await RevocationChannel(there, shared_redis).announce(token.token_id)
        await asyncio.wait_for(here.heard.wait(), WAIT)
    finally:
        await stop(listener)

    assert await verdict(here, token, sessions) == "revoked"


async def test_subscribing_forgets_every_cached_token(
    sessions: Sessions, shared_redis: Redis
) -> None:
    """A revocation made while this replica was not subscribed is honoured once it is."""
    token = await issue(sessions)
    verifier = HearingVerifier(cache_seconds=60.0)
    await verifier.verify(token.secret, token.account_id, sessions)
    await revoke_in_database(sessions, token)  # announced while nobody here was listening

    listener = await listening(RevocationChannel(verifier, shared_redis))
    try:
        after_subscribing = await verdict(verifier, token, sessions)
    finally:
        await stop(listener)

    assert after_subscribing == "revoked"


async def test_a_failed_subscription_is_retried_and_logged_and_never_reported_as_heard(
    unreachable_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocations, "RESUBSCRIBE_SECONDS", 0)
    warnings = Warnings(count=2)
    logger = logging.getLogger("gateway")
    logger.addHandler(warnings)
    channel = RevocationChannel(HearingVerifier(), unreachable_redis)

    listener = asyncio.create_task(channel.listen())
    try:
        await asyncio.wait_for(warnings.enough.wait(), WAIT)
    finally:
        logger.removeHandler(warnings)
        await stop(listener)

    assert not channel.subscribed.is_set()
    assert all(m.startswith("not hearing token revocations (") for m in warnings.messages)
