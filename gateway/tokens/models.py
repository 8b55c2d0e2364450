from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.accounts.models import Account
from gateway.db.base import Base, as_utc, new_id, utc_now


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey(Account.id, ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and as_utc(self.expires_at) <= now

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
