"""Every table, imported in one place so Alembic's metadata is complete."""

from gateway.accounts.models import Account
from gateway.db.base import Base
from gateway.limits.models import AccountLimits
from gateway.tokens.models import ApiToken
from gateway.usage.models import UsageRecord

__all__ = ["Account", "AccountLimits", "ApiToken", "Base", "UsageRecord"]
