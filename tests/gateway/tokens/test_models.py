"""The stored token: when it counts as expired or revoked, what the database fills in, and
what it refuses to hold."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.accounts.models import Account
from gateway.tokens.models import ApiToken
from gateway.tokens.secrets import token_hash
from tests.gateway.tokens.issued import Sessions

NOW = datetime(2024, 6, 15, 10, 0, tzinfo=UTC)


def token(**fields: object) -> ApiToken:
    return ApiToken(
        **{
            "account_id": "a" * 32,
            "name": "ci",
            "token_prefix": "gwk_abcdefgh",
            "token_hash": token_hash("gwk_secret"),
            **fields,
        }
    )


async def stored_account(sessions: Sessions) -> str:
    async with sessions() as session:
        account = Account(name="acme")
        session.add(account)
        await session.commit()
    return account.id


def test_a_token_without_an_expiry_never_expires() -> None:
    assert not token().is_expired(datetime.max.replace(tzinfo=UTC))


def test_a_token_is_expired_from_its_expiry_instant_on() -> None:
    expiring = token(expires_at=NOW)

    assert not expiring.is_expired(NOW - timedelta(microseconds=1))
    assert expiring.is_expired(NOW)


def test_an_expiry_without_a_time_zone_is_read_as_utc() -> None:
    """SQLite hands datetimes back without their zone."""
    expiring = token(expires_at=NOW.replace(tzinfo=None))

    assert not expiring.is_expired(NOW - timedelta(seconds=1))
    assert expiring.is_expired(NOW)


def test_a_token_is_revoked_once_it_has_a_revocation_time() -> None:
    assert not token().is_revoked
    assert token(revoked_at=NOW).is_revoked


async def test_a_stored_token_gets_a_hex_id_and_its_creation_time(sessions: Sessions) -> None:
    account_id = await stored_account(sessions)
    before = datetime.now(UTC)
    async with sessions() as session:
        stored = token(account_id=account_id)
        session.add(stored)
        await session.commit()

    assert re.fullmatch(r"[0-9a-f]{32}", stored.id)
    assert before <= stored.created_at <= datetime.now(UTC)
    assert (stored.expires_at, stored.revoked_at) == (None, None)


async def test_deleting_an_account_deletes_its_tokens(sessions: Sessions) -> None:
    account_id = await stored_account(sessions)
    async with sessions() as session:
        session.add(token(account_id=account_id))
        await session.commit()
        await session.execute(delete(Account).where(Account.id == account_id))
        await session.commit()
        left = (await session.scalars(select(ApiToken))).all()

    assert left == []


async def test_two_tokens_cannot_share_a_hash(sessions: Sessions) -> None:
    account_id = await stored_account(sessions)
    async with sessions() as session:
        session.add_all([token(account_id=account_id), token(account_id=account_id)])
        with pytest.raises(IntegrityError, match="token_hash"):
            await session.commit()


async def test_a_token_of_no_account_is_not_stored(sessions: Sessions) -> None:
    async with sessions() as session:
        session.add(token(account_id="f" * 32))
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await session.commit()
