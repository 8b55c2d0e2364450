from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.accounts.models import Account
from gateway.db.base import Base
from gateway.usage.client_request_id import MAX_LENGTH as CLIENT_REQUEST_ID_LENGTH


class UsageRecord(Base):
    """One request on the account API; `id` is the request id, so a replay writes it once."""

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_account_id_started_at", "account_id", "started_at"),
        Index("ix_usage_records_account_id_client_request_id", "account_id", "client_request_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32), ForeignKey(Account.id, ondelete="CASCADE"))
    token_id: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    time_to_first_token_ms: Mapped[float | None] = mapped_column(Float)
    duration_ms: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(index=True)
    client_request_id: Mapped[str | None] = mapped_column(String(CLIENT_REQUEST_ID_LENGTH))
    """The client's own `X-Request-Id`, if it sent one; not unique (a client may reuse it)."""
