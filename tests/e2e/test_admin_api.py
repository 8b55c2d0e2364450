"""The operators' admin API and the account API's token rules, over real HTTP."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.cloudflare_lists import every_item
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.each_database


def verify(gateway: GatewayProcess, account_id: str, token: str) -> httpx.Response:
    with gateway.client() as client:
        return client.get(
            f"/client/v4/accounts/{account_id}/tokens/verify",
            headers={"Authorization": f"Bearer {token}"},
        )


def test_creating_an_account_returns_201_with_a_cloudflare_style_id(
    gateway: GatewayProcess,
) -> None:
    with gateway.client() as client:
        reply = client.post(
            "/admin/v1/accounts", json={"name": "Acme Corp"}, headers=gateway.admin_headers
        )
    assert reply.status_code == 201
    assert re.fullmatch(r"[0-9a-f]{32}", reply.json()["result"]["id"])
    assert reply.json()["result"]["name"] == "Acme Corp"


def test_accounts_are_listed_and_fetched(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    with gateway.client() as client:
        listed = every_item(client, "/admin/v1/accounts", gateway.admin_headers)
        fetched = client.get(f"/admin/v1/accounts/{account_id}", headers=gateway.admin_headers)
    assert account_id in [account["id"] for account in listed]
    assert fetched.json()["result"]["id"] == account_id


def test_a_duplicate_account_name_is_409(gateway: GatewayProcess) -> None:
    gateway.create_account("twice")
    with gateway.client() as client:
        reply = client.post(
            "/admin/v1/accounts", json={"name": "twice"}, headers=gateway.admin_headers
        )
    assert reply.status_code == 409
    assert reply.json()["errors"][0]["message"] == "An account named 'twice' already exists"


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": "'; DROP TABLE accounts; --"}]
)
def test_an_invalid_account_name_is_400(gateway: GatewayProcess, body: dict[str, str]) -> None:
    with gateway.client() as client:
        reply = client.post("/admin/v1/accounts", json=body, headers=gateway.admin_headers)
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == 5006


def test_an_unknown_account_is_404(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        reply = client.get(f"/admin/v1/accounts/{'0' * 32}", headers=gateway.admin_headers)
    assert reply.status_code == 404
    assert reply.json()["success"] is False


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}]
)
def test_admin_routes_refuse_a_missing_or_wrong_admin_token(
    gateway: GatewayProcess, headers: dict[str, str]
) -> None:
    with gateway.client() as client:
        reply = client.get("/admin/v1/accounts", headers=headers)
    assert reply.status_code == 401
    assert reply.json()["errors"][0]["code"] == 10000


def test_an_api_token_is_not_an_admin_token(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    with gateway.client() as client:
        reply = client.get("/admin/v1/accounts", headers={"Authorization": f"Bearer {account[1]}"})
    assert reply.status_code == 401


def test_a_created_token_is_shown_once_and_works(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    created = gateway.create_token(account_id)
    assert str(created["token"]).startswith("gwk_")
    assert len(str(created["token"])) >= 40
    assert verify(gateway, account_id, str(created["token"])).json()["result"]["status"] == "active"


def test_the_account_less_verify_names_the_tokens_account(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    created = gateway.create_token(account_id)
    with gateway.client() as client:
        reply = client.get(
            "/client/v4/user/tokens/verify", headers={"Authorization": f"Bearer {created['token']}"}
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"] == {
        "id": created["id"],
        "account_id": account_id,
        "status": "active",
        "expires_at": None,
    }


def test_the_account_less_verify_refuses_an_unknown_token_in_the_envelope(
    gateway: GatewayProcess,
) -> None:
    with gateway.client() as client:
        reply = client.get(
            "/client/v4/user/tokens/verify", headers={"Authorization": "Bearer gwk_unknown"}
        )
    assert reply.status_code == 401
    assert reply.json()["errors"][0]["code"] == 10000


def test_listed_tokens_carry_no_secret(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    secret = str(gateway.create_token(account_id)["token"])
    with gateway.client() as client:
        reply = client.get(f"/admin/v1/accounts/{account_id}/tokens", headers=gateway.admin_headers)
    assert reply.status_code == 200
    assert "token" not in reply.json()["result"][0]
    assert secret not in reply.text
    assert reply.json()["result"][0]["token_prefix"] == secret[:12]


def test_a_revoked_token_is_refused_at_once(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    created = gateway.create_token(account_id)
    assert verify(gateway, account_id, str(created["token"])).status_code == 200
    with gateway.client() as client:
        reply = client.delete(
            f"/admin/v1/accounts/{account_id}/tokens/{created['id']}", headers=gateway.admin_headers
        )
    refused = verify(gateway, account_id, str(created["token"]))
    assert reply.status_code == 204
    assert refused.status_code == 401
    assert "revoked" in refused.json()["errors"][0]["message"]


def test_revoking_a_token_of_another_account_is_404(gateway: GatewayProcess) -> None:
    owner, other = gateway.create_account(), gateway.create_account()
    created = gateway.create_token(owner)
    with gateway.client() as client:
        reply = client.delete(
            f"/admin/v1/accounts/{other}/tokens/{created['id']}", headers=gateway.admin_headers
        )
    assert reply.status_code == 404
    assert verify(gateway, owner, str(created["token"])).status_code == 200


def test_an_expired_token_is_refused(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    expires_at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    created = gateway.create_token(account_id, expires_at=expires_at)
    time.sleep(1.2)
    refused = verify(gateway, account_id, str(created["token"]))
    assert refused.status_code == 401
    assert "expired" in refused.json()["errors"][0]["message"]


def test_a_token_expiring_in_the_past_is_400(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    with gateway.client() as client:
        reply = client.post(
            f"/admin/v1/accounts/{account_id}/tokens",
            json={"name": "old", "expires_at": "2020-01-01T00:00:00Z"},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 400
    assert "future" in reply.json()["errors"][0]["message"]


def test_a_token_expiring_after_year_9999_in_utc_is_400(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    with gateway.client() as client:
        reply = client.post(
            f"/admin/v1/accounts/{account_id}/tokens",
            json={"name": "far", "expires_at": "9999-12-31T23:59:59-01:00"},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 400
    assert "after 9999-12-31 UTC" in reply.json()["errors"][0]["message"]


def test_a_token_for_an_unknown_account_is_404(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        reply = client.post(
            f"/admin/v1/accounts/{'f' * 32}/tokens",
            json={"name": "x"},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 404


def test_malformed_json_is_400_in_the_envelope(gateway: GatewayProcess) -> None:
    with gateway.client() as client:
        reply = client.post(
            "/admin/v1/accounts",
            content=b'{"name": ',
            headers={**gateway.admin_headers, "content-type": "application/json"},
        )
    assert reply.status_code == 400
    assert reply.json()["success"] is False


def test_unknown_routes_are_404_in_the_envelope(gateway: GatewayProcess) -> None:
    reply = httpx.get(f"{gateway.base_url}/nope")
    assert reply.status_code == 404
    assert reply.json()["errors"][0] == {
        "code": 7003,
        "message": "Not found: no route for GET /nope",
    }


def test_liveness_answers(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.base_url}/healthz").json() == {"status": "ok", "checks": {}}


def test_openapi_schema_describes_every_route(gateway: GatewayProcess) -> None:
    schema = httpx.get(f"{gateway.base_url}/schema/openapi.json").json()
    assert set(schema["paths"]) >= {
        "/client/v4/accounts/{account_id}/ai/run/{model}",
        "/client/v4/accounts/{account_id}/ai/models/search",
        "/client/v4/accounts/{account_id}/tokens/verify",
        "/client/v4/user/tokens/verify",
        "/admin/v1/accounts",
        "/admin/v1/accounts/{account_id}",
        "/admin/v1/accounts/{account_id}/tokens",
        "/admin/v1/accounts/{account_id}/tokens/{token_id}",
        "/healthz",
        "/readyz",
    }
    run = schema["paths"]["/client/v4/accounts/{account_id}/ai/run/{model}"]["post"]
    assert {"200", "400", "401", "403", "404", "413", "503"} <= set(run["responses"])
    assert set(schema["components"]["securitySchemes"]) == {"ApiToken", "AdminToken"}
