"""An account's token total from its usage records: what seeds its monthly quota's counter
when the limits' store has none (a new month, or a Redis that lost it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.usage.models import UsageRecord


async def tokens_used_since(
    sessions: async_sessionmaker[AsyncSession], account_id: str, start: datetime
) -> int:
    """Prompt and completion tokens of the account's runs started at or after `start`."""
    async with sessions() as session:
        total = await session.scalar(
            select(
                func.coalesce(
                    func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0
                )
            ).where(UsageRecord.account_id == account_id, UsageRecord.started_at >= start)
        )
    return int(total or 0)
