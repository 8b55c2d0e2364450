"""Who is calling the account API: a token that is valid, live, and of this account."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.admin import bearer_token
from gateway.db.base import as_utc, utc_now
from gateway.tokens.secrets import TOKEN_PREFIX, token_hash
from gateway.tokens.service import TokenService
from gateway.tokens.throttle import AuthenticationFailed, AuthenticationThrottle
from gateway.ttl_cache import TtlCache

REVOKED_MEMORY_SECONDS = 60.0
"""How long a replica remembers a revocation it heard of, at least: longer than any lookup
that read the token before the revocation committed can take to come back."""


@dataclass(frozen=True)
class Caller:
    account_id: str
    token_id: str


def _refused(message: str, reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(401, f"Authentication error: {message}", reason)


class TokenVerifier:
    """Checks tokens against the database, remembering live ones for `cache_seconds`.

    The cache keeps the database off the streaming path's start (and lets known tokens run
    through a short database outage, metered later). A revocation takes effect before the
    admin API answers it: the token is forgotten after the revocation commits, and refused
    even if a lookup that began before the commit comes back afterwards. Other replicas hear
    of it through Redis (`revocations.py`) within milliseconds, or, without Redis, honour it
    within `cache_seconds` (never past the token's own expiry). 0 turns the cache off.
    """

    def __init__(
        self,
        cache_seconds: float,
        throttle: AuthenticationThrottle,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache_seconds = cache_seconds
        self._live: TtlCache[str, Caller] = TtlCache()
        self._revoked: dict[str, float] = {}
        """Token id → until when it is refused whatever a lookup says."""
        self._clock = clock
        self.throttle = throttle

    def revoked(self, token_id: str) -> None:
        """`token_id` was revoked (and committed): refuse it from now on."""
        now = self._clock()
        for expired in [id_ for id_, until in self._revoked.items() if until <= now]:
            del self._revoked[expired]
        # A lookup that began before the commit may return within REVOKED_MEMORY_SECONDS and
        # cache its verdict for `cache_seconds` from then: remember the revocation past both.
        self._revoked[token_id] = now + REVOKED_MEMORY_SECONDS + self._cache_seconds
        self._live.forget_where(lambda caller: caller.token_id == token_id)

    def forget_all(self) -> None:
        """Drop every cached token (revocations may have been missed)."""
        self._live.forget_where(lambda _: True)

    async def authenticate(
        self,
        authorization: str | None,
        account_id: str | None,
        sessions: async_sessionmaker[AsyncSession],
        client_address: str | None,
    ) -> Caller:
        """The caller an `Authorization` header names; a failure is counted and, from an
        address that fails too often, the next attempts are refused unchecked."""
        self.throttle.check(client_address)
        try:
            secret = bearer_token(authorization)
            if secret is None:
                raise _refused("missing API token: send Authorization: Bearer <token>", "missing")
            return await self.verify(secret, account_id, sessions)
        except AuthenticationFailed as error:
            self.throttle.failed(client_address, error.reason)
            raise

    async def verify(
        self, secret: str, account_id: str | None, sessions: async_sessionmaker[AsyncSession]
    ) -> Caller:
        """One indexed lookup by hash; the secret itself is never logged or echoed.
        `account_id` None: the token alone names the account (OpenAI's base URL `/v1`).

        The lookup uses a session of its own, returned to the pool at once: a request-scoped
        session would hold a connection for as long as a stream lasts.
        """
        if not secret.startswith(TOKEN_PREFIX):
            raise _refused("malformed API token", "malformed")
        digest = token_hash(secret)

        async def load() -> tuple[Caller, float]:
            async with sessions() as session:
                token = await TokenService(session).find_by_secret(secret)
            if token is None or not secrets.compare_digest(token.token_hash, digest):
                raise _refused("invalid API token", "invalid")
            if token.is_revoked:
                raise _refused("this API token has been revoked", "revoked")
            now = utc_now()
            if token.is_expired(now):
                raise _refused("this API token has expired", "expired")
            keep = self._cache_seconds
            if token.expires_at is not None:
                keep = min(keep, (as_utc(token.expires_at) - now).total_seconds())
            return Caller(account_id=token.account_id, token_id=token.id), keep

        caller = await self._live.get(digest, load)
        if caller.token_id in self._revoked:
            raise _refused("this API token has been revoked", "revoked")
        if account_id is not None and caller.account_id != account_id:
            raise AuthenticationFailed(
                403, "Authentication error: this token belongs to another account", "other_account"
            )
        return caller


async def provide_caller(
    request: Request,  # type: ignore[type-arg]
    account_id: str,
    db_sessions: async_sessionmaker[AsyncSession],
    token_verifier: TokenVerifier,
) -> Caller:
    """The caller of `/client/v4/accounts/{account_id}/…`: a token of that account."""
    return await _caller(request, account_id, db_sessions, token_verifier)


async def provide_token_caller(
    request: Request,  # type: ignore[type-arg]
    db_sessions: async_sessionmaker[AsyncSession],
    token_verifier: TokenVerifier,
) -> Caller:
    """The caller of a path that names no account: the token's own account."""
    return await _caller(request, None, db_sessions, token_verifier)


async def _caller(
    request: Request,  # type: ignore[type-arg]
    account_id: str | None,
    db_sessions: async_sessionmaker[AsyncSession],
    token_verifier: TokenVerifier,
) -> Caller:
    client = request.client.host if request.client else None
    return await token_verifier.authenticate(
        request.headers.get("authorization"), account_id, db_sessions, client
    )
