"""Web apps on other origins: the ones the operator allows stream from the account API with
`fetch()`; others, and every page calling the admin API, are refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Error, Page

from tests.accounting import INT8, bearer, new_account, run_url, usage_records, wait_for_records
from tests.browser.conftest import WebApps
from tests.gateway_fixtures import ADMIN_TOKEN, GatewayFactory, GatewayProcess

STREAM_WITH_FETCH = """async ({url, token, body}) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {Authorization: `Bearer ${token}`, "Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const chunks = [];
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  return {
    status: response.status,
    requestId: response.headers.get("x-request-id"),
    remainingRequests: response.headers.get("x-ratelimit-remaining-requests"),
    retryAfter: response.headers.get("retry-after"),
    chunks,
  };
}"""
FETCH_ERROR = """async ({url, headers}) => {
  try {
    await fetch(url, {headers});
    return null;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
}"""


def stream_from(page: Page, origin: str, gateway: GatewayProcess, **call: Any) -> Any:
    page.goto(f"{origin}/app")
    return page.evaluate(STREAM_WITH_FETCH, {**call, "url": gateway.base_url + call["url"]})


def preflight(gateway: GatewayProcess, path: str, origin: str) -> httpx.Response:
    return httpx.options(
        gateway.base_url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def test_a_page_on_an_allowed_origin_streams_a_run_with_fetch(
    page: Page, cors_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    account_id, token = new_account(cors_gateway)

    result = stream_from(
        page,
        web_apps.allowed,
        cors_gateway,
        url=run_url(account_id),
        token=token,
        body={"prompt": "Hello", "stream": True, "max_tokens": 200},
    )

    assert result["status"] == 200
    events = "".join(result["chunks"])
    assert events.count('data: {"response"') > 2
    assert events.endswith("data: [DONE]\n\n")
    assert len(result["chunks"]) > 1
    assert result["remainingRequests"] is not None
    [record] = wait_for_records(cors_gateway, 1, request_id=result["requestId"])
    assert record["status"] == "ok"
    assert f'"completion_tokens":{record["completion_tokens"]},' in events


def test_a_page_on_an_allowed_origin_reads_a_rate_limits_retry_after(
    page: Page, cors_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    account_id, token = new_account(cors_gateway, requests_per_minute=1)
    call = {"url": run_url(account_id), "token": token, "body": {"prompt": "Hi", "max_tokens": 1}}

    assert stream_from(page, web_apps.allowed, cors_gateway, **call)["status"] == 200
    again = {**call, "url": cors_gateway.base_url + call["url"]}
    refused = page.evaluate(STREAM_WITH_FETCH, again)
    if refused["status"] == 200:  # a minute began between the two: the third is refused
        refused = page.evaluate(STREAM_WITH_FETCH, again)

    assert refused["status"] == 429
    assert int(refused["retryAfter"]) > 0
    assert '"code":3040' in "".join(refused["chunks"])


def test_a_page_on_another_origin_is_refused_before_its_run_is_sent(
    page: Page, cors_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    account_id, token = new_account(cors_gateway)
    page.goto(f"{web_apps.other}/app")

    with pytest.raises(Error, match="Failed to fetch"):
        page.evaluate(
            STREAM_WITH_FETCH,
            {
                "url": cors_gateway.base_url + run_url(account_id),
                "token": token,
                "body": {"prompt": "Hello", "max_tokens": 5},
            },
        )
    assert usage_records(cors_gateway, account_id=account_id) == []


def test_no_page_can_call_the_admin_api_not_even_on_an_allowed_origin(
    page: Page, cors_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    page.goto(f"{web_apps.allowed}/app")

    failure = page.evaluate(
        FETCH_ERROR,
        {
            "url": f"{cors_gateway.base_url}/admin/v1/accounts",
            "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        },
    )

    assert failure == "TypeError: Failed to fetch"


def test_a_preflight_from_an_allowed_origin_allows_a_post_with_a_token(
    cors_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    reply = preflight(cors_gateway, run_url("any-account"), web_apps.allowed)

    assert reply.status_code == 204
    assert reply.headers["access-control-allow-origin"] == web_apps.allowed
    assert "POST" in reply.headers["access-control-allow-methods"]
    allowed_headers = reply.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type"} <= {
        name.strip() for name in allowed_headers.split(",")
    }
    assert reply.headers["vary"] == "Origin"
    assert int(reply.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in reply.headers


def test_a_preflight_from_another_origin_gets_no_cors_headers(
    cors_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    reply = preflight(cors_gateway, run_url("any-account"), web_apps.other)

    assert not [name for name in reply.headers if name.startswith("access-control-")]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/client/v4/accounts/some-account/ai/run/" + INT8, 401),
        ("GET", "/client/v4/accounts/some-account/no-such-route", 404),
        ("POST", "/v1/chat/completions", 401),
    ],
)
def test_the_account_apis_errors_reach_an_allowed_page_with_the_exposed_headers(
    cors_gateway: GatewayProcess, web_apps: WebApps, method: str, path: str, status: int
) -> None:
    reply = httpx.request(
        method,
        cors_gateway.base_url + path,
        headers={"Origin": web_apps.allowed},
        json={} if method == "POST" else None,
    )

    assert reply.status_code == status
    assert reply.headers["access-control-allow-origin"] == web_apps.allowed
    exposed = reply.headers["access-control-expose-headers"]
    for header in ("x-request-id", "retry-after", "x-ratelimit-remaining-tokens"):
        assert header in exposed


@pytest.mark.parametrize("path", ["/admin/v1/accounts", "/admin/v1/usage"])
def test_the_admin_api_refuses_a_request_from_any_other_origin(
    cors_gateway: GatewayProcess, web_apps: WebApps, path: str
) -> None:
    reply = httpx.get(
        cors_gateway.base_url + path,
        headers={"Origin": web_apps.allowed, **cors_gateway.admin_headers},
    )
    refused_preflight = preflight(cors_gateway, path, web_apps.allowed)

    assert reply.status_code == 403
    assert reply.json()["errors"][0]["message"] == (
        "The admin API does not answer cross-origin requests"
    )
    assert refused_preflight.status_code == 403
    for response in (reply, refused_preflight):
        assert not [name for name in response.headers if name.startswith("access-control-")]


def test_the_admin_api_answers_its_own_origin_and_tools_that_send_none(
    cors_gateway: GatewayProcess,
) -> None:
    own_origin = httpx.get(
        f"{cors_gateway.base_url}/admin/v1/accounts",
        headers={"Origin": cors_gateway.base_url, **cors_gateway.admin_headers},
    )
    no_origin = httpx.get(
        f"{cors_gateway.base_url}/admin/v1/accounts", headers=cors_gateway.admin_headers
    )

    assert (own_origin.status_code, no_origin.status_code) == (200, 200)


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/playground", "/schema/openapi.json"])
def test_pages_outside_the_account_api_send_no_cors_headers(
    cors_gateway: GatewayProcess, web_apps: WebApps, path: str
) -> None:
    url = cors_gateway.metrics_url if path == "/metrics" else cors_gateway.base_url + path
    reply = httpx.get(url, headers={"Origin": web_apps.allowed})

    assert reply.status_code == 200
    assert "access-control-allow-origin" not in reply.headers


def test_by_default_no_origin_is_allowed(
    smollm2_gateway: GatewayProcess, web_apps: WebApps
) -> None:
    reply = preflight(smollm2_gateway, run_url("any-account"), web_apps.allowed)
    answer = httpx.get(
        f"{smollm2_gateway.base_url}/client/v4/user/tokens/verify",
        headers={"Origin": web_apps.allowed},
    )

    assert "access-control-allow-origin" not in reply.headers
    assert "access-control-allow-origin" not in answer.headers


def test_a_wildcard_allows_every_origin_without_credentials(
    gateway_factory: GatewayFactory, web_apps: WebApps
) -> None:
    gateway = gateway_factory(GATEWAY_CORS_ALLOW_ORIGINS="*")
    account_id, token = new_account(gateway)

    reply = preflight(gateway, run_url(account_id), web_apps.other)
    answer = httpx.get(
        f"{gateway.base_url}/client/v4/accounts/{account_id}/ai/models/search",
        headers={"Origin": web_apps.other, **bearer(token)},
    )

    assert reply.headers["access-control-allow-origin"] == "*"
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "vary" not in reply.headers
