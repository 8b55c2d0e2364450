"""The account service on an in-memory database: creating (once per name), finding, and
listing accounts page by page, oldest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.accounts.models import Account
from gateway.accounts.service import AccountService
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.paging import PageRequest

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2024, 6, 15, 10, 0, tzinfo=UTC)


async def created(sessions: Sessions, *names: str) -> list[str]:
    """Ids of accounts created one minute apart, in the order named."""
    async with sessions() as session:
        accounts = [
            Account(name=name, created_at=T0 + timedelta(minutes=index))
            for index, name in enumerate(names)
        ]
        session.add_all(accounts)
        await session.commit()
    return [account.id for account in accounts]


async def test_a_new_account_gets_a_cloudflare_shaped_id_and_its_creation_time_in_utc(
    sessions: Sessions,
) -> None:
    async with sessions() as session:
        account = await AccountService(session).create("Acme Corp")
        await session.commit()

    assert re.fullmatch(r"[0-9a-f]{32}", account.id)
    assert account.name == "Acme Corp"
    assert account.created_at.tzinfo == UTC


async def test_an_account_reads_back_as_it_was_created(sessions: Sessions) -> None:
    async with sessions() as session:
        account = await AccountService(session).create("acme")
        await session.commit()

    async with sessions() as session:
        found = await AccountService(session).get(account.id)

    assert found == account


async def test_a_second_account_of_the_same_name_is_a_conflict(sessions: Sessions) -> None:
    await created(sessions, "twice")

    async with sessions() as session:
        with pytest.raises(ApiError) as refused:
            await AccountService(session).create("twice")

    assert (refused.value.status_code, refused.value.code) == (409, ErrorCode.CONFLICT)
    assert refused.value.message == "An account named 'twice' already exists"


async def test_a_session_whose_create_was_refused_can_create_another(sessions: Sessions) -> None:
    await created(sessions, "twice")

    async with sessions() as session:
        accounts = AccountService(session)
        with pytest.raises(ApiError):
            await accounts.create("twice")
        other = await accounts.create("once")
        await session.commit()

    async with sessions() as session:
        assert (await AccountService(session).get(other.id)).name == "once"


async def test_an_unknown_account_is_not_found(sessions: Sessions) -> None:
    async with sessions() as session:
        with pytest.raises(ApiError) as refused:
            await AccountService(session).get("0" * 32)

    assert (refused.value.status_code, refused.value.code) == (404, ErrorCode.NOT_FOUND)
    assert refused.value.message == f"No account with id '{'0' * 32}'"


async def test_an_account_is_found_by_its_exact_name_only(sessions: Sessions) -> None:
    [account_id] = await created(sessions, "acme")

    async with sessions() as session:
        accounts = AccountService(session)
        found = await accounts.get_by_name("acme")
        near_misses = [await accounts.get_by_name(name) for name in ("Acme", "acme ", "acm")]

    assert found is not None
    assert found.id == account_id
    assert near_misses == [None, None, None]


async def test_accounts_are_listed_oldest_first_a_page_at_a_time(sessions: Sessions) -> None:
    ids = await created(sessions, "c-first", "a-second", "b-third")

    async with sessions() as session:
        accounts = AccountService(session)
        first, total = await accounts.list(PageRequest(page=1, per_page=2))
        second, _ = await accounts.list(PageRequest(page=2, per_page=2))

    assert total == 3
    assert [account.id for account in first + second] == ids


async def test_a_page_past_the_last_is_empty_and_still_counts_every_account(
    sessions: Sessions,
) -> None:
    await created(sessions, "only")

    async with sessions() as session:
        page, total = await AccountService(session).list(PageRequest(page=2, per_page=1))

    assert (page, total) == ([], 1)


async def test_listed_creation_times_are_in_utc(sessions: Sessions) -> None:
    """SQLite hands them back without their zone."""
    await created(sessions, "acme")

    async with sessions() as session:
        [account], _ = await AccountService(session).list(PageRequest(page=1, per_page=10))

    assert account.created_at == T0
    assert account.created_at.tzinfo == UTC
