"""Who is calling the account API: a token that is valid, live, and of this account."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.admin import bearer_token
from gateway.db.base import as_utc, utc_now
from gateway.errors import AUTHENTICATION, ApiError
from gateway.tokens.secrets import TOKEN_PREFIX, token_hash
from gateway.tokens.service import TokenService
from gateway.ttl_cache import TtlCache


@dataclass(frozen=True)
class Caller:
    account_id: str
    token_id: str


def _refused(reason: str) -> ApiError:
    return ApiError(401, AUTHENTICATION, f"Authentication error: {reason}")


class TokenVerifier:
    """Checks tokens against the database, remembering live ones for `cache_seconds`.

    The cache keeps the database off the streaming path's start (and lets known tokens run
    through a short database outage, metered later). A token revoked through this replica's
    admin API is forgotten at once; other replicas honour a revocation within
    `cache_seconds`, and never past the token's own expiry. 0 turns the cache off.
    """

    def __init__(self, cache_seconds: float) -> None:
        self._cache_seconds = cache_seconds
        self._live: TtlCache[str, Caller] = TtlCache()

    def forget(self, token_id: str) -> None:
        self._live.forget_where(lambda caller: caller.token_id == token_id)

    async def verify(
        self, secret: str, account_id: str | None, sessions: async_sessionmaker[AsyncSession]
    ) -> Caller:
        """One indexed lookup by hash; the secret itself is never logged or echoed.
        `account_id` None: the token alone names the account (OpenAI's base URL `/v1`).

        The lookup uses a session of its own, returned to the pool at once: a request-scoped
        session would hold a connection for as long as a stream lasts.
        """
        if not secret.startswith(TOKEN_PREFIX):
            raise _refused("malformed API token")
        digest = token_hash(secret)

        async def load() -> tuple[Caller, float]:
            async with sessions() as session:
                token = await TokenService(session).find_by_secret(secret)
            if token is None or not secrets.compare_digest(token.token_hash, digest):
                raise _refused("invalid API token")
            if token.is_revoked:
                raise _refused("this API token has been revoked")
            now = utc_now()
            if token.is_expired(now):
                raise _refused("this API token has expired")
            keep = self._cache_seconds
            if token.expires_at is not None:
                keep = min(keep, (as_utc(token.expires_at) - now).total_seconds())
            return Caller(account_id=token.account_id, token_id=token.id), keep

        return self._of_account(await self._live.get(digest, load), account_id)

    @staticmethod
    def _of_account(caller: Caller, account_id: str | None) -> Caller:
        if account_id is not None and caller.account_id != account_id:
            raise ApiError(
                403, AUTHENTICATION, "Authentication error: this token belongs to another account"
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
    secret = bearer_token(request.headers.get("authorization"))
    if secret is None:
        raise _refused("missing API token: send Authorization: Bearer <token>")
    return await token_verifier.verify(secret, account_id, db_sessions)
