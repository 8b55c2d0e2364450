from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts.service import AccountService
from gateway.db.base import as_utc, in_utc, utc_now
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.paging import PageRequest, fetch_page
from gateway.tokens.models import ApiToken
from gateway.tokens.schemas import TokenCreated, TokenRead
from gateway.tokens.secrets import DISPLAY_PREFIX_LENGTH, new_token, token_hash


def _optional_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def token_read(token: ApiToken) -> TokenRead:
    return TokenRead(
        id=token.id,
        account_id=token.account_id,
        name=token.name,
        token_prefix=token.token_prefix,
        created_at=as_utc(token.created_at),
        expires_at=_optional_utc(token.expires_at),
        revoked_at=_optional_utc(token.revoked_at),
    )


class TokenService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, account_id: str, name: str, expires_at: datetime | None = None
    ) -> TokenCreated:
        await AccountService(self.session).require(account_id)
        if expires_at is not None:
            expires_at = in_utc(expires_at)
            if expires_at is None:
                raise ApiError(
                    400, ErrorCode.BAD_INPUT, "Bad input: expires_at is after 9999-12-31 UTC"
                )
            if expires_at <= utc_now():
                raise ApiError(
                    400, ErrorCode.BAD_INPUT, "Bad input: expires_at must be in the future"
                )
        secret = new_token()
        token = ApiToken(
            account_id=account_id,
            name=name,
            token_prefix=secret[:DISPLAY_PREFIX_LENGTH],
            token_hash=token_hash(secret),
            expires_at=expires_at,
        )
        self.session.add(token)
        await self.session.flush()
        return TokenCreated(
            id=token.id,
            account_id=account_id,
            name=name,
            token=secret,
            token_prefix=token.token_prefix,
            created_at=as_utc(token.created_at),
            expires_at=expires_at,
        )

    async def list(self, account_id: str, page: PageRequest) -> tuple[list[TokenRead], int]:
        """Oldest first; one page, and how many tokens the account has."""
        await AccountService(self.session).require(account_id)
        statement = (
            select(ApiToken)
            .where(ApiToken.account_id == account_id)
            .order_by(ApiToken.created_at, ApiToken.id)
        )
        tokens, total = await fetch_page(self.session, statement, page)
        return [token_read(token) for token in tokens], total

    async def revoke(self, account_id: str, token_id: str) -> None:
        token = await self.session.get(ApiToken, token_id)
        if token is None or token.account_id != account_id:
            raise ApiError(
                404, ErrorCode.NOT_FOUND, f"No token '{token_id}' in account '{account_id}'"
            )
        if token.revoked_at is None:
            token.revoked_at = utc_now()

    async def find_by_secret(self, secret: str) -> ApiToken | None:
        return await self.session.scalar(
            select(ApiToken).where(ApiToken.token_hash == token_hash(secret))
        )

    async def find_by_id(self, token_id: str) -> ApiToken:
        token = await self.session.get(ApiToken, token_id)
        if token is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"No token '{token_id}'")
        return token
