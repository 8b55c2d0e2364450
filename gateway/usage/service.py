"""Usage totals over a period, grouped by day, model or account, from the usage records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.base import as_utc
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.paging import PageRequest, fetch_page
from gateway.usage.models import UsageRecord
from gateway.usage.schemas import UsageRecordRead, UsageRow


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Defaults: from the start of this month (UTC) until now. Naive times are UTC."""
    now = datetime.now(UTC)
    start = since or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = until or now
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    if start >= end:
        raise ApiError(400, ErrorCode.BAD_INPUT, "Bad input: 'since' must be before 'until'")
    return start.astimezone(UTC), end.astimezone(UTC)


class UsageService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _group_column(self, group_by: str) -> Any:
        if group_by == "model":
            return UsageRecord.model
        if group_by == "account":
            return UsageRecord.account_id
        if self.session.get_bind().dialect.name == "postgresql":
            return cast(func.timezone("UTC", UsageRecord.started_at), Date)
        return func.date(UsageRecord.started_at)

    async def totals(
        self,
        since: datetime,
        until: datetime,
        group_by: str,
        account_id: str | None = None,
    ) -> list[UsageRow]:
        group = self._group_column(group_by).label("key")
        statement = (
            select(
                group,
                func.count(),
                func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
                func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
            )
            .where(UsageRecord.started_at >= since, UsageRecord.started_at < until)
            .group_by(group)
            .order_by(group)
        )
        if account_id is not None:
            statement = statement.where(UsageRecord.account_id == account_id)
        rows = await self.session.execute(statement)
        return [
            UsageRow(str(key), int(count), int(prompt), int(completion), int(prompt + completion))
            for key, count, prompt, completion in rows
        ]

    async def records(
        self,
        since: datetime,
        until: datetime,
        account_id: str | None = None,
        request_id: str | None = None,
        *,
        client_request_id: str | None = None,
        page: PageRequest,
    ) -> tuple[list[UsageRecordRead], int]:
        """The newest records first: one page, and how many records match. `request_id` is
        the gateway's id of a run; `client_request_id` the client's (which it may reuse)."""
        statement = (
            select(UsageRecord)
            .where(UsageRecord.started_at >= since, UsageRecord.started_at < until)
            .order_by(UsageRecord.started_at.desc(), UsageRecord.id.desc())
        )
        if account_id is not None:
            statement = statement.where(UsageRecord.account_id == account_id)
        if request_id is not None:
            statement = statement.where(UsageRecord.id == request_id)
        if client_request_id is not None:
            statement = statement.where(UsageRecord.client_request_id == client_request_id)
        records, total = await fetch_page(self.session, statement, page)
        rows = [
            UsageRecordRead(
                record.id,
                record.account_id,
                record.token_id,
                record.model,
                record.status,
                record.prompt_tokens,
                record.completion_tokens,
                record.time_to_first_token_ms,
                record.duration_ms,
                as_utc(record.started_at),
                record.client_request_id,
            )
            for record in records
        ]
        return rows, total
