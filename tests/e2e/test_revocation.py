"""A revoked token stops working before the revoking call returns, on the replica that
revoked it, and at once on the others that share its Redis."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.gateway_fixtures import GatewayFactory, GatewayProcess

REDIS_URL = "redis://127.0.0.1:6379/0"


def verify_status(gateway: GatewayProcess, token: str) -> int:
    return httpx.get(
        f"{gateway.base_url}/client/v4/user/tokens/verify",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


def revoke(gateway: GatewayProcess, account_id: str, token_id: str) -> None:
    reply = httpx.delete(
        f"{gateway.base_url}/admin/v1/accounts/{account_id}/tokens/{token_id}",
        headers=gateway.admin_headers,
    )
    assert reply.status_code == 204


class Hammer:
    """Verifies a token over and over from another thread, noting when each call began."""

    def __init__(self, gateway: GatewayProcess, token: str) -> None:
        self.calls: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(gateway, token))

    def _run(self, gateway: GatewayProcess, token: str) -> None:
        url = f"{gateway.base_url}/client/v4/user/tokens/verify"
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                self.calls.append((began, client.get(url).status_code))

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def caching_gateway(gateway_factory: GatewayFactory) -> GatewayProcess:
    """Trusts a verified token for a minute: only an announced revocation can end that."""
    return gateway_factory("postgresql", REDIS_URL=REDIS_URL, GATEWAY_TOKEN_CACHE_SECONDS="60")


def test_no_call_that_begins_after_the_revocation_returns_succeeds(
    caching_gateway: GatewayProcess,
) -> None:
    late_successes = []
    for _ in range(8):
        account_id = caching_gateway.create_account()
        created = caching_gateway.create_token(account_id)
        with Hammer(caching_gateway, str(created["token"])) as hammer:
            time.sleep(0.3)
            revoke(caching_gateway, account_id, str(created["id"]))
            revoked_at = time.monotonic()
            time.sleep(0.5)
        late_successes += [
            status for began, status in hammer.calls if began > revoked_at and status == 200
        ]
        assert any(status == 200 for began, status in hammer.calls if began < revoked_at)

    assert late_successes == []


def test_another_replica_refuses_a_revoked_token_at_once(
    gateway_factory: GatewayFactory, caching_gateway: GatewayProcess
) -> None:
    other = gateway_factory(
        database_url=caching_gateway.database_url,
        REDIS_URL=REDIS_URL,
        GATEWAY_TOKEN_CACHE_SECONDS="60",
    )
    account_id = caching_gateway.create_account()
    created = caching_gateway.create_token(account_id)
    token = str(created["token"])
    assert verify_status(other, token) == 200  # now cached there for a minute

    revoke(caching_gateway, account_id, str(created["id"]))
    deadline = time.monotonic() + 1.0
    while verify_status(other, token) == 200 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert verify_status(other, token) == 401
