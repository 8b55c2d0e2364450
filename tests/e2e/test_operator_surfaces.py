"""What only operators may reach: `/metrics` on its own port, the admin API and playground
on the gateway's own names and origin, and a throttle on guessing tokens."""

from __future__ import annotations

import httpx
import pytest

from tests.accounting import gateway_metric
from tests.gateway_fixtures import GatewayFactory, GatewayProcess
from tests.raw_http import raw_request

pytestmark = pytest.mark.triton

ATTACKER = "http://rebound.attacker.example"


def test_metrics_are_not_served_on_the_api_port(gateway: GatewayProcess) -> None:
    reply = httpx.get(f"{gateway.base_url}/metrics")

    assert reply.status_code == 404
    assert reply.json()["errors"][0]["code"] == 7003


def test_the_metrics_port_serves_metrics_and_nothing_else(gateway: GatewayProcess) -> None:
    metrics_base = gateway.metrics_url.removesuffix("/metrics")

    assert "gateway_requests_total" in httpx.get(gateway.metrics_url).text
    assert (
        httpx.get(f"{metrics_base}/admin/v1/accounts", headers=gateway.admin_headers).status_code
        == 404
    )
    assert httpx.get(f"{metrics_base}//metrics/../healthz").status_code == 404


def test_requests_are_not_written_to_an_access_log(gateway: GatewayProcess) -> None:
    """Client addresses and paths stay out of the logs (and a line per request off the loop)."""
    httpx.get(f"{gateway.base_url}/healthz")
    httpx.get(gateway.metrics_url)

    assert "GET /healthz HTTP/1.1" not in gateway.log_path.read_text()


def test_metrics_can_be_served_on_the_api_port_when_asked(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(GATEWAY_METRICS_PORT="0")

    assert "gateway_requests_total" in httpx.get(f"{gateway.base_url}/metrics").text


def test_a_doubled_slash_does_not_slip_past_the_admin_apis_origin_check(
    gateway: GatewayProcess,
) -> None:
    reply = raw_request(
        gateway, "GET", "//admin/v1/accounts", {"Origin": ATTACKER, **gateway.admin_headers}
    )

    assert reply.status_code == 403


def test_an_origin_with_the_right_host_but_another_scheme_is_refused_by_the_admin_api(
    gateway: GatewayProcess,
) -> None:
    host = gateway.base_url.removeprefix("http://")

    reply = httpx.get(
        f"{gateway.base_url}/admin/v1/accounts",
        headers={"Origin": f"https://{host}", **gateway.admin_headers},
    )

    assert reply.status_code == 403


@pytest.mark.parametrize("path", ["/admin/v1/accounts", "/playground", "//playground"])
def test_a_rebound_host_name_is_refused_by_the_admin_api_and_the_playground(
    gateway: GatewayProcess, path: str
) -> None:
    """DNS rebinding: the attacker's page has the attacker's name as `Host` and `Origin`."""
    reply = raw_request(
        gateway,
        "GET",
        path,
        {"Host": "rebound.attacker.example", "Origin": ATTACKER, **gateway.admin_headers},
    )

    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == 7005


def test_the_account_api_answers_any_host_name(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = raw_request(
        gateway,
        "GET",
        "/client/v4/user/tokens/verify",
        {"Host": "api.example.com", "Authorization": f"Bearer {account[1]}"},
    )

    assert reply.status_code == 200


def test_listed_host_names_reach_the_admin_api(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(GATEWAY_ALLOWED_HOSTS="gateway.internal, 127.0.0.1")

    reply = raw_request(
        gateway,
        "GET",
        "/admin/v1/accounts",
        {"Host": "gateway.internal:8080", **gateway.admin_headers},
    )

    assert reply.status_code == 200


def test_failed_authentications_are_counted_by_reason(gateway: GatewayProcess) -> None:
    url = f"{gateway.base_url}/client/v4/user/tokens/verify"
    before = {
        reason: gateway_metric(gateway, "gateway_auth_failures_total", reason=reason)
        for reason in ("missing", "malformed", "invalid", "admin_token")
    }

    httpx.get(url)
    httpx.get(url, headers={"Authorization": "Bearer nonsense"})
    httpx.get(url, headers={"Authorization": "Bearer gwk_" + "x" * 43})
    httpx.get(f"{gateway.base_url}/admin/v1/accounts", headers={"Authorization": "Bearer guess"})

    after = {
        reason: gateway_metric(gateway, "gateway_auth_failures_total", reason=reason)
        for reason in before
    }
    assert {reason: after[reason] - before[reason] for reason in before} == {
        "missing": 1,
        "malformed": 1,
        "invalid": 1,
        "admin_token": 1,
    }


@pytest.fixture(scope="module")
def throttled_gateway(module_gateway_factory: GatewayFactory) -> GatewayProcess:
    """Each test fails from addresses of its own."""
    return module_gateway_factory(GATEWAY_AUTH_FAILURES_PER_MINUTE="5")


def guess(
    gateway: GatewayProcess, address: str, path: str = "/client/v4/user/tokens/verify"
) -> httpx.Response:
    """A wrong token from `address` (as a proxy on loopback, which the gateway trusts, says)."""
    return httpx.get(
        gateway.base_url + path,
        headers={"Authorization": "Bearer gwk_" + "y" * 43, "X-Forwarded-For": address},
    )


def test_an_address_that_fails_too_often_is_refused_with_429_and_retry_after(
    throttled_gateway: GatewayProcess,
) -> None:
    throttled_before = gateway_metric(
        throttled_gateway, "gateway_auth_failures_total", reason="throttled"
    )
    statuses = [guess(throttled_gateway, "198.51.100.7").status_code for _ in range(5)]

    refused = guess(throttled_gateway, "198.51.100.7")

    assert statuses == [401] * 5
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == 10001
    assert 0 < int(refused.headers["retry-after"]) <= 60
    throttled = gateway_metric(throttled_gateway, "gateway_auth_failures_total", reason="throttled")
    assert throttled - throttled_before == 1


def test_a_throttled_address_does_not_hold_back_another(
    throttled_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    for _ in range(6):
        guess(throttled_gateway, "198.51.100.8")

    assert guess(throttled_gateway, "198.51.100.9").status_code == 401


def test_guessing_the_admin_token_is_throttled_too(throttled_gateway: GatewayProcess) -> None:
    statuses = [
        guess(throttled_gateway, "198.51.100.10", "/admin/v1/accounts").status_code
        for _ in range(6)
    ]

    assert statuses == [401] * 5 + [429]
