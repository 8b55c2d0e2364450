"""Admin API for tokens, and the account API's own token check."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin import ADMIN_ERROR_RESPONSES
from gateway.db.base import as_utc
from gateway.envelope import Envelope, error_responses, ok
from gateway.paging import PagedEnvelope, PageRequest, paged, paging
from gateway.tokens.auth import Caller, provide_token_caller
from gateway.tokens.revocations import RevocationChannel
from gateway.tokens.schemas import TokenCreate, TokenCreated, TokenRead, TokenVerification
from gateway.tokens.service import TokenService


class TokenAdminController(Controller):
    path = "/accounts/{account_id:str}/tokens"
    tags = ["Admin"]  # noqa: RUF012
    responses = ADMIN_ERROR_RESPONSES

    @post("/", status_code=201, summary="Create an API token (the secret is shown once)")
    async def create(
        self, account_id: str, data: TokenCreate, db_session: AsyncSession
    ) -> Envelope[TokenCreated]:
        return ok(await TokenService(db_session).create(account_id, data.name, data.expires_at))

    @get(
        "/",
        summary="List an account's tokens (no secrets), oldest first",
        dependencies={"page_request": paging(default_per_page=20)},
    )
    async def list_tokens(
        self, account_id: str, db_session: AsyncSession, page_request: PageRequest
    ) -> PagedEnvelope[TokenRead]:
        tokens, total = await TokenService(db_session).list(account_id, page_request)
        return paged(tokens, total, page_request)

    @delete("/{token_id:str}", status_code=204, summary="Revoke a token, effective at once")
    async def revoke(
        self,
        account_id: str,
        token_id: str,
        db_session: AsyncSession,
        revocations: RevocationChannel,
    ) -> None:
        await TokenService(db_session).revoke(account_id, token_id)
        await db_session.commit()  # before it is announced: a lookup now reads it revoked
        await revocations.announce(token_id)


async def _verification(caller: Caller, session: AsyncSession) -> TokenVerification:
    token = await TokenService(session).find_by_id(caller.token_id)
    expires_at = None if token.expires_at is None else as_utc(token.expires_at)
    return TokenVerification(
        id=caller.token_id, account_id=caller.account_id, status="active", expires_at=expires_at
    )


class TokenVerifyController(Controller):
    path = "/client/v4/accounts/{account_id:str}/tokens/verify"
    tags = ["Tokens"]  # noqa: RUF012

    @get(
        "/",
        summary="Verify the calling token",
        responses=error_responses({401: "Invalid token", 403: "Token of another account"}),
    )
    async def verify(self, caller: Caller, db_session: AsyncSession) -> Envelope[TokenVerification]:
        return ok(await _verification(caller, db_session))


class UserTokenVerifyController(Controller):
    """Cloudflare's account-less check, which also tells a page holding only a token (the
    playground) which account it belongs to."""

    path = "/client/v4/user/tokens/verify"
    tags = ["Tokens"]  # noqa: RUF012
    dependencies = {"caller": Provide(provide_token_caller)}  # noqa: RUF012

    @get(
        "/",
        summary="Verify the calling token and name its account",
        responses=error_responses({401: "Invalid token"}),
    )
    async def verify(self, caller: Caller, db_session: AsyncSession) -> Envelope[TokenVerification]:
        return ok(await _verification(caller, db_session))
