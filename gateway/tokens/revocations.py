"""Revocations reach every replica: published on a Redis channel, heard by each replica's
subscriber, which makes its `TokenVerifier` refuse the token at once.

While a replica is not subscribed (Redis down, a reconnect) it may miss some; whenever its
subscription (re)starts it forgets every cached token, so a missed revocation takes effect
then, and in any case within `GATEWAY_TOKEN_CACHE_SECONDS`. Without Redis the cache's time
to live is the only bound for other replicas.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.tokens.auth import TokenVerifier

logger = logging.getLogger("gateway")

CHANNEL = "llm-gateway:token-revocations"
POLL_SECONDS = 1.0
RESUBSCRIBE_SECONDS = 1.0


class RevocationChannel:
    def __init__(self, verifier: TokenVerifier, redis: Redis | None) -> None:
        self._verifier = verifier
        self._redis = redis
        self.subscribed = asyncio.Event()
        """Set while this replica hears revocations (tests wait for it)."""

    async def announce(self, token_id: str) -> None:
        """A committed revocation: refused here at once, and published to the others. A
        failed publish is logged: the others then honour it within their cache's lifetime."""
        self._verifier.revoked(token_id)
        if self._redis is None:
            return
        try:
            await self._redis.publish(CHANNEL, token_id)
        except (RedisError, OSError) as error:
            logger.warning(
                "token %s revoked, but other replicas could not be told (%s): they refuse it "
                "once their cached verdict expires",
                token_id,
                error,
            )

    async def listen(self) -> None:
        """Runs until cancelled, subscribing again after any failure."""
        if self._redis is None:
            return
        while True:
            try:
                await self._listen_once(self._redis)
            except (RedisError, OSError) as error:
                self.subscribed.clear()
                logger.warning("not hearing token revocations (%s); retrying", error)
                await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def _listen_once(self, redis: Redis) -> None:
        async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(CHANNEL)
            self._verifier.forget_all()
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=POLL_SECONDS)
                if message is not None and message["type"] == "message":
                    data = message["data"]
                    self._verifier.revoked(data.decode() if isinstance(data, bytes) else data)
