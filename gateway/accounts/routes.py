"""Admin API: `/admin/v1/accounts` (mounted under the admin router)."""

from __future__ import annotations

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.schemas import AccountCreate, AccountRead
from gateway.accounts.service import AccountService
from gateway.admin import ADMIN_ERROR_RESPONSES
from gateway.envelope import Envelope, ok
from gateway.paging import PagedEnvelope, PageRequest, paged, paging


class AccountController(Controller):
    path = "/accounts"
    tags = ["Admin"]  # noqa: RUF012
    responses = ADMIN_ERROR_RESPONSES

    @post("/", status_code=201, summary="Create an account")
    async def create(self, data: AccountCreate, db_session: AsyncSession) -> Envelope[AccountRead]:
        return ok(await AccountService(db_session).create(data.name))

    @get(
        "/",
        summary="List accounts, oldest first",
        dependencies={"page_request": paging(default_per_page=20)},
    )
    async def list_accounts(
        self, db_session: AsyncSession, page_request: PageRequest
    ) -> PagedEnvelope[AccountRead]:
        accounts, total = await AccountService(db_session).list(page_request)
        return paged(accounts, total, page_request)

    @get("/{account_id:str}", summary="Get an account")
    async def get_account(self, account_id: str, db_session: AsyncSession) -> Envelope[AccountRead]:
        return ok(await AccountService(db_session).get(account_id))
