"""Token verification on an in-memory database: what a token must be to name its caller, what
each refusal says and is counted under, how long a verdict is trusted, and that a revocation
wins over a lookup that was already under way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from gateway.db.base import utc_now
from gateway.db.engine import create_engine
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.metrics.registry import GatewayMetrics
from gateway.tokens.auth import REVOKED_MEMORY_SECONDS, Caller, TokenVerifier
from gateway.tokens.models import ApiToken
from gateway.tokens.secrets import DISPLAY_PREFIX_LENGTH, new_token, token_hash
from gateway.tokens.throttle import AuthenticationFailed, AuthenticationThrottle
from tests.gateway.clock import SteppedClock
from tests.gateway.tokens.issued import Issued, Sessions, issue, revoke_in_database

ADDRESS = "203.0.113.7"
TABLELESS = "sqlite+aiosqlite:///:memory:"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    """The verifier's clock, and its cache's (`TtlCache` reads `time.monotonic` itself)."""
    clock = SteppedClock(1000.0)
    monkeypatch.setattr("gateway.ttl_cache.time", SimpleNamespace(monotonic=clock.now))
    return clock


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


def verifier(
    clock: SteppedClock,
    metrics: GatewayMetrics | None = None,
    *,
    cache_seconds: float = 5.0,
    failures_per_minute: int = 0,
) -> TokenVerifier:
    throttle = AuthenticationThrottle(failures_per_minute, metrics or GatewayMetrics(), clock.now)
    return TokenVerifier(cache_seconds, throttle, clock.now)


async def refusal(verifying: Awaitable[Caller]) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as refused:
        await verifying
    return refused.value


def failures(metrics: GatewayMetrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("gateway_auth_failures_total", {"reason": reason})


async def issue_expired(sessions: Sessions, account_id: str) -> str:
    """A token whose expiry has passed (the service refuses to issue one: stored directly)."""
    secret = new_token()
    async with sessions() as session:
        session.add(
            ApiToken(
                account_id=account_id,
                name="old",
                token_prefix=secret[:DISPLAY_PREFIX_LENGTH],
                token_hash=token_hash(secret),
                expires_at=utc_now() - timedelta(seconds=1),
            )
        )
        await session.commit()
    return secret


# What a token must be


async def test_a_live_token_names_its_account_and_itself(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)

    caller = await verifier(clock).verify(token.secret, token.account_id, sessions)

    assert caller == Caller(account_id=token.account_id, token_id=token.token_id)


async def test_a_token_of_another_account_is_forbidden(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions, "acme")
    other = await issue(sessions, "globex")

    refused = await refusal(verifier(clock).verify(token.secret, other.account_id, sessions))

    assert (refused.status_code, refused.code, refused.reason) == (
        403,
        ErrorCode.AUTHENTICATION,
        "other_account",
    )
    assert refused.message == "Authentication error: this token belongs to another account"


async def test_a_secret_without_the_token_prefix_is_refused_without_a_lookup(
    clock: SteppedClock,
) -> None:
    """A database without tables would fail any lookup: none is made."""
    engine = create_engine(TABLELESS)
    try:
        tableless = async_sessionmaker(engine)
        refused = await refusal(verifier(clock).verify("sk-" + "x" * 43, None, tableless))
    finally:
        await engine.dispose()

    assert (refused.status_code, refused.reason) == (401, "malformed")
    assert refused.message == "Authentication error: malformed API token"


async def test_a_token_that_was_never_issued_is_invalid(
    sessions: Sessions, clock: SteppedClock
) -> None:
    refused = await refusal(verifier(clock).verify(new_token(), None, sessions))

    assert (refused.status_code, refused.reason) == (401, "invalid")
    assert refused.message == "Authentication error: invalid API token"


async def test_a_revoked_token_is_refused_as_revoked(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    await revoke_in_database(sessions, token)

    refused = await refusal(verifier(clock).verify(token.secret, token.account_id, sessions))

    assert (refused.status_code, refused.reason) == (401, "revoked")
    assert refused.message == "Authentication error: this API token has been revoked"


async def test_an_expired_token_is_refused_as_expired(
    sessions: Sessions, clock: SteppedClock
) -> None:
    account_id = (await issue(sessions)).account_id
    secret = await issue_expired(sessions, account_id)

    refused = await refusal(verifier(clock).verify(secret, account_id, sessions))

    assert (refused.status_code, refused.reason) == (401, "expired")
    assert refused.message == "Authentication error: this API token has expired"


# How long a verdict is trusted


async def test_a_verified_token_is_trusted_for_the_cache_seconds_without_a_lookup(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    tokens = verifier(clock, cache_seconds=5.0)
    await tokens.verify(token.secret, token.account_id, sessions)
    await revoke_in_database(sessions, token)

    clock.step(4.9)
    trusted = await tokens.verify(token.secret, token.account_id, sessions)
    clock.step(0.2)
    refused = await refusal(tokens.verify(token.secret, token.account_id, sessions))

    assert trusted.token_id == token.token_id
    assert refused.reason == "revoked"


async def test_with_no_cache_every_verification_asks_the_database(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    tokens = verifier(clock, cache_seconds=0)
    await tokens.verify(token.secret, token.account_id, sessions)
    await revoke_in_database(sessions, token)

    refused = await refusal(tokens.verify(token.secret, token.account_id, sessions))

    assert refused.reason == "revoked"


async def test_a_token_is_trusted_no_longer_than_until_it_expires(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions, expires_at=utc_now() + timedelta(seconds=60))
    tokens = verifier(clock, cache_seconds=300.0)
    await tokens.verify(token.secret, token.account_id, sessions)
    await revoke_in_database(sessions, token)

    clock.step(50)
    trusted = await tokens.verify(token.secret, token.account_id, sessions)
    clock.step(11)
    refused = await refusal(tokens.verify(token.secret, token.account_id, sessions))

    assert trusted.token_id == token.token_id
    assert refused.reason == "revoked"  # looked up again: the cached verdict lapsed with it


async def test_a_revocation_refuses_a_cached_token_at_once(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    tokens = verifier(clock, cache_seconds=60.0)
    await tokens.verify(token.secret, token.account_id, sessions)

    tokens.revoked(token.token_id)
    refused = await refusal(tokens.verify(token.secret, token.account_id, sessions))

    assert refused.reason == "revoked"


async def test_forgetting_every_token_makes_the_next_verification_ask_the_database(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    tokens = verifier(clock, cache_seconds=60.0)
    await tokens.verify(token.secret, token.account_id, sessions)
    await revoke_in_database(sessions, token)

    tokens.forget_all()
    refused = await refusal(tokens.verify(token.secret, token.account_id, sessions))

    assert refused.reason == "revoked"


async def lookup_straddling_a_revocation(
    sessions: Sessions, clock: SteppedClock, tokens: TokenVerifier, token: Issued
) -> AuthenticationFailed:
    """A lookup that read the token before its revocation committed and came back a second
    after the verifier heard of it."""
    looking_up = asyncio.create_task(tokens.verify(token.secret, token.account_id, sessions))
    await asyncio.sleep(0)  # the lookup is under way (waiting on the database's thread)
    assert not looking_up.done()
    tokens.revoked(token.token_id)
    clock.step(1)
    return await refusal(looking_up)


async def test_a_lookup_under_way_when_the_token_is_revoked_does_not_let_it_through(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    tokens = verifier(clock, cache_seconds=5.0)

    refused = await lookup_straddling_a_revocation(sessions, clock, tokens, token)
    clock.step(4.5)
    still = await refusal(tokens.verify(token.secret, token.account_id, sessions))

    assert (refused.reason, still.reason) == ("revoked", "revoked")


async def test_a_revoked_tokens_straggling_verdict_never_outlives_the_revocations_memory(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)
    later = await issue(sessions)
    cache_seconds = 2 * REVOKED_MEMORY_SECONDS
    tokens = verifier(clock, cache_seconds=cache_seconds)
    await lookup_straddling_a_revocation(sessions, clock, tokens, token)

    clock.step(cache_seconds - 0.5)  # the memory has lapsed; the straggler's verdict has not
    tokens.revoked(later.token_id)  # any later revocation drops lapsed memories
    verifying = tokens.verify(token.secret, token.account_id, sessions)

    assert (await refusal(verifying)).reason == "revoked"


# Reading the Authorization header, counting and throttling failures


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer ", "Basic dXNlcjpwYXNz", "gwk_abc", "Token gwk_abc"]
)
async def test_a_request_without_a_bearer_token_is_refused_as_missing(
    sessions: Sessions, clock: SteppedClock, metrics: GatewayMetrics, authorization: str | None
) -> None:
    refused = await refusal(
        verifier(clock, metrics).authenticate(authorization, None, sessions, ADDRESS)
    )

    assert (refused.status_code, refused.reason) == (401, "missing")
    assert refused.message == (
        "Authentication error: missing API token: send Authorization: Bearer <token>"
    )
    assert failures(metrics, "missing") == 1


async def test_the_bearer_scheme_is_read_in_any_case_and_the_token_trimmed(
    sessions: Sessions, clock: SteppedClock
) -> None:
    token = await issue(sessions)

    caller = await verifier(clock).authenticate(
        f"bEARER {token.secret} ", token.account_id, sessions, ADDRESS
    )

    assert caller.token_id == token.token_id


async def test_a_verified_token_counts_no_failure(
    sessions: Sessions, clock: SteppedClock, metrics: GatewayMetrics
) -> None:
    token = await issue(sessions)

    await verifier(clock, metrics).authenticate(
        f"Bearer {token.secret}", token.account_id, sessions, ADDRESS
    )

    assert [failures(metrics, reason) for reason in ("missing", "malformed", "invalid")] == [0] * 3


async def test_a_throttled_address_is_refused_unchecked_until_its_minute_ends(
    sessions: Sessions, clock: SteppedClock, metrics: GatewayMetrics
) -> None:
    token = await issue(sessions)
    tokens = verifier(clock, metrics, failures_per_minute=2)
    valid = f"Bearer {token.secret}"
    for _ in range(2):
        await refusal(tokens.authenticate("Bearer gwk_guess", None, sessions, ADDRESS))

    clock.step(59.5)
    with pytest.raises(ApiError) as throttled:
        await tokens.authenticate(valid, None, sessions, ADDRESS)
    clock.step(0.5)
    caller = await tokens.authenticate(valid, None, sessions, ADDRESS)

    assert (throttled.value.status_code, throttled.value.code) == (
        429,
        ErrorCode.AUTHENTICATION_THROTTLED,
    )
    assert throttled.value.headers == {"Retry-After": "1"}
    assert caller.token_id == token.token_id
    assert (failures(metrics, "invalid"), failures(metrics, "throttled")) == (2, 1)
