from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.models import Account
from gateway.accounts.schemas import AccountRead
from gateway.db.base import as_utc
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.paging import PageRequest, fetch_page


def account_read(account: Account) -> AccountRead:
    return AccountRead(id=account.id, name=account.name, created_at=as_utc(account.created_at))


class AccountService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str) -> AccountRead:
        account = Account(name=name)
        self.session.add(account)
        try:
            await self.session.flush()
        except IntegrityError:
            await self.session.rollback()
            raise ApiError(
                409, ErrorCode.CONFLICT, f"An account named '{name}' already exists"
            ) from None
        return account_read(account)

    async def list(self, page: PageRequest) -> tuple[list[AccountRead], int]:
        """Oldest first; one page, and how many accounts there are."""
        statement = select(Account).order_by(Account.created_at, Account.id)
        accounts, total = await fetch_page(self.session, statement, page)
        return [account_read(account) for account in accounts], total

    async def get(self, account_id: str) -> AccountRead:
        return account_read(await self.require(account_id))

    async def get_by_name(self, name: str) -> AccountRead | None:
        account = await self.session.scalar(select(Account).where(Account.name == name))
        return None if account is None else account_read(account)

    async def require(self, account_id: str) -> Account:
        account = await self.session.get(Account, account_id)
        if account is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"No account with id '{account_id}'")
        return account
