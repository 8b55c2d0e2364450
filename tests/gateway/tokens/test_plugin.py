"""The tokens plugin in a small Litestar app, in-process: its verifier names the callers of the
account API's paths, with the settings' throttle; its revocation channel reaches that verifier;
with Redis, the channel listens for as long as the app runs.

The test client runs the app's requests on the test's loop, its lifespan on a loop of its own."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Litestar, get, post
from litestar.di import Provide
from litestar.testing import AsyncTestClient

from gateway.error_format import EXCEPTION_HANDLERS
from gateway.metrics.registry import GatewayMetrics
from gateway.settings import RedisSettings, SecuritySettings
from gateway.tokens.auth import Caller, provide_caller, provide_token_caller
from gateway.tokens.plugin import TokensPlugin
from gateway.tokens.revocations import RevocationChannel
from tests.gateway.tokens.issued import Issued, Sessions, issue

SHARED_REDIS = "redis://127.0.0.1:6379/0"
LISTENER = "token-revocations"


@get(
    "/client/v4/accounts/{account_id:str}/caller", dependencies={"caller": Provide(provide_caller)}
)
async def account_caller(caller: Caller) -> dict[str, str]:
    return {"account_id": caller.account_id, "token_id": caller.token_id}


@get("/v1/caller", dependencies={"caller": Provide(provide_token_caller)})
async def token_caller(caller: Caller) -> dict[str, str]:
    return {"account_id": caller.account_id, "token_id": caller.token_id}


@post("/revoke/{token_id:str}", status_code=204)
async def revoke(token_id: str, revocations: RevocationChannel) -> None:
    await revocations.announce(token_id)


def plugin(
    redis_url: str | None = None,
    *,
    token_cache_seconds: float = 5.0,
    auth_failures_per_minute: int = 60,
) -> TokensPlugin:
    settings = SecuritySettings(
        _env_file=None,
        token_cache_seconds=token_cache_seconds,
        auth_failures_per_minute=auth_failures_per_minute,
    )
    return TokensPlugin(settings, redis_url, RedisSettings(retries=0), GatewayMetrics())


def app(tokens: TokensPlugin, sessions: Sessions) -> Litestar:
    return Litestar(
        route_handlers=[account_caller, token_caller, revoke],
        plugins=[tokens],
        dependencies={"db_sessions": Provide(lambda: sessions, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
    )


@pytest.fixture(scope="module", autouse=True)
def first_app_built() -> None:
    """Litestar's first app imports its plugins and configures logging, which costs half a
    second where bytecode is not cached: paid once in this fixture, not by the first test."""
    Litestar(route_handlers=[account_caller], plugins=[plugin()])


def bearer(token: Issued) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.secret}"}


def listeners() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == LISTENER]


async def test_an_account_path_names_the_caller_of_a_token_of_that_account(
    sessions: Sessions,
) -> None:
    token = await issue(sessions)

    async with AsyncTestClient(app(plugin(), sessions)) as client:
        reply = await client.get(
            f"/client/v4/accounts/{token.account_id}/caller", headers=bearer(token)
        )

    assert reply.status_code == 200
    assert reply.json() == {"account_id": token.account_id, "token_id": token.token_id}


async def test_an_account_path_refuses_a_token_of_another_account(sessions: Sessions) -> None:
    token = await issue(sessions, "acme")
    other = await issue(sessions, "globex")

    async with AsyncTestClient(app(plugin(), sessions)) as client:
        reply = await client.get(
            f"/client/v4/accounts/{other.account_id}/caller", headers=bearer(token)
        )

    assert reply.status_code == 403
    assert reply.json()["errors"] == [
        {"code": 10000, "message": "Authentication error: this token belongs to another account"}
    ]


async def test_a_path_that_names_no_account_is_the_tokens_own_accounts(
    sessions: Sessions,
) -> None:
    token = await issue(sessions)

    async with AsyncTestClient(app(plugin(), sessions)) as client:
        reply = await client.get("/v1/caller", headers=bearer(token))

    assert reply.json() == {"account_id": token.account_id, "token_id": token.token_id}


async def test_the_settings_failures_per_minute_throttle_the_clients_address(
    sessions: Sessions,
) -> None:
    token = await issue(sessions)

    async with AsyncTestClient(app(plugin(auth_failures_per_minute=1), sessions)) as client:
        missing = await client.get("/v1/caller")
        throttled = await client.get("/v1/caller", headers=bearer(token))

    assert (missing.status_code, throttled.status_code) == (401, 429)
    assert throttled.headers["retry-after"] == "60"


async def test_a_revocation_announced_through_the_app_is_refused_by_its_verifier(
    sessions: Sessions,
) -> None:
    token = await issue(sessions)

    async with AsyncTestClient(app(plugin(token_cache_seconds=60), sessions)) as client:
        trusted = await client.get("/v1/caller", headers=bearer(token))
        revoked = await client.post(f"/revoke/{token.token_id}")
        refused = await client.get("/v1/caller", headers=bearer(token))

    assert (trusted.status_code, revoked.status_code, refused.status_code) == (200, 204, 401)
    assert (
        refused.json()["error"]["message"]
        == "Authentication error: this API token has been revoked"
    )


async def test_without_redis_the_app_runs_no_listener(sessions: Sessions) -> None:
    """The lifespan entered directly: the test client would run it on a loop of its own."""
    tokens = plugin()

    async with tokens.lifespan(app(tokens, sessions)):
        running = listeners()

    assert running == []
    assert not tokens.revocations.subscribed.is_set()


async def test_with_redis_the_app_listens_for_revocations_for_as_long_as_it_runs(
    sessions: Sessions,
) -> None:
    """The lifespan entered directly: the test client would run it on a loop of its own."""
    tokens = plugin(SHARED_REDIS)

    async with tokens.lifespan(app(tokens, sessions)):
        await asyncio.wait_for(tokens.revocations.subscribed.wait(), 2.0)
        running = listeners()

    assert len(running) == 1
    assert running[0].cancelled()
