from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.accounts.models import Account
from gateway.db.base import Base


class AccountLimits(Base):
    """An account's own limits; a NULL column falls back to the settings' default."""

    __tablename__ = "account_limits"

    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(Account.id, ondelete="CASCADE"), primary_key=True
    )
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer)
    concurrent_streams: Mapped[int | None] = mapped_column(Integer)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)
