"""Admin API: `/admin/v1/accounts/{account_id}/limits`."""

from __future__ import annotations

import dataclasses

from litestar import Controller, get, put
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.service import AccountService
from gateway.admin import ADMIN_ERROR_RESPONSES
from gateway.envelope import Envelope, ok
from gateway.limits.models import AccountLimits
from gateway.limits.schemas import AccountLimitsRead, LimitValues
from gateway.limits.service import LimitsService


async def _read(
    account_id: str, own: AccountLimits | None, limits: LimitsService
) -> AccountLimitsRead:
    values = (
        LimitValues(
            own.requests_per_minute,
            own.tokens_per_minute,
            own.concurrent_streams,
            own.monthly_tokens,
        )
        if own is not None
        else LimitValues()
    )
    effective = await limits.limits_for(account_id)
    return AccountLimitsRead(account_id, values, LimitValues(**dataclasses.asdict(effective)))


class AccountLimitsController(Controller):
    path = "/accounts/{account_id:str}/limits"
    tags = ["Admin"]  # noqa: RUF012
    responses = ADMIN_ERROR_RESPONSES

    @get("/", summary="An account's limits: its own and the effective ones")
    async def get_limits(
        self, account_id: str, db_session: AsyncSession, limits: LimitsService
    ) -> Envelope[AccountLimitsRead]:
        await AccountService(db_session).require(account_id)
        own = await db_session.get(AccountLimits, account_id)
        return ok(await _read(account_id, own, limits))

    @put("/", summary="Set an account's limits (null: the default, 0: none)")
    async def set_limits(
        self,
        account_id: str,
        data: LimitValues,
        db_session: AsyncSession,
        limits: LimitsService,
    ) -> Envelope[AccountLimitsRead]:
        await AccountService(db_session).require(account_id)
        own = await db_session.get(AccountLimits, account_id)
        if own is None:
            own = AccountLimits(account_id=account_id)
            db_session.add(own)
        own.requests_per_minute = data.requests_per_minute
        own.tokens_per_minute = data.tokens_per_minute
        own.concurrent_streams = data.concurrent_streams
        own.monthly_tokens = data.monthly_tokens
        await db_session.commit()
        limits.forget(account_id)
        return ok(await _read(account_id, own, limits))
