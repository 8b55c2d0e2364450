"""What the token tests share: tokens issued by the gateway's own services, revoked in the
database behind a verifier's back."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.accounts.service import AccountService
from gateway.tokens.service import TokenService

Sessions = async_sessionmaker[AsyncSession]


class Issued(NamedTuple):
    account_id: str
    token_id: str
    secret: str


async def issue(
    sessions: Sessions, account: str = "acme", expires_at: datetime | None = None
) -> Issued:
    """A token of `account` (created if new), committed as the admin API commits it."""
    async with sessions() as session:
        accounts = AccountService(session)
        found = await accounts.get_by_name(account) or await accounts.create(account)
        created = await TokenService(session).create(found.id, "ci", expires_at)
        await session.commit()
    return Issued(found.id, created.id, created.token)


async def revoke_in_database(sessions: Sessions, token: Issued) -> None:
    """The revocation committed, with no verifier told of it."""
    async with sessions() as session:
        await TokenService(session).revoke(token.account_id, token.token_id)
        await session.commit()
