"""Cloudflare v4 paging on every list of the Cloudflare-shaped API: `page` and `per_page` in,
`result_info` out, a page past the end empty, bad values a 400 in the envelope."""

from __future__ import annotations

import pytest

from tests.accounting import FP16, INT8, bearer, new_account, run, wait_for_records
from tests.cloudflare_lists import every_item
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def account(gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(gateway)


def models_search(
    gateway: GatewayProcess, account: tuple[str, str], **params: str
) -> dict[str, object]:
    with gateway.client() as client:
        reply = client.get(
            f"/client/v4/accounts/{account[0]}/ai/models/search",
            params=params,
            headers=bearer(account[1]),
        )
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_models_search_answers_result_info_for_its_first_page(
    gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    body = models_search(gateway, account)

    assert len(body["result"]) == 2  # type: ignore[arg-type]
    assert body["result_info"] == {
        "page": 1,
        "per_page": 20,
        "count": 2,
        "total_count": 2,
        "total_pages": 1,
    }


def test_models_search_pages_per_page(gateway: GatewayProcess, account: tuple[str, str]) -> None:
    first = models_search(gateway, account, per_page="1")
    second = models_search(gateway, account, per_page="1", page="2")

    names = [model["name"] for model in [*first["result"], *second["result"]]]  # type: ignore[misc]
    assert sorted(names) == sorted([INT8, FP16])
    assert second["result_info"] == {
        "page": 2,
        "per_page": 1,
        "count": 1,
        "total_count": 2,
        "total_pages": 2,
    }


@pytest.mark.parametrize("page", ["3", "1000000000000"])
def test_a_page_past_the_end_is_empty(
    gateway: GatewayProcess, account: tuple[str, str], page: str
) -> None:
    body = models_search(gateway, account, per_page="1", page=page)

    assert body["result"] == []
    assert body["result_info"]["total_count"] == 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "two"}, "page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "1001"}, "per_page"),
        ({"per_page": "1.5"}, "per_page"),
        ({"author": "meta"}, "author"),
        ({"search": "x" * 257}, "search"),
    ],
)
def test_a_bad_paging_or_filter_value_is_400_in_the_envelope(
    gateway: GatewayProcess, account: tuple[str, str], params: dict[str, str], named: str
) -> None:
    with gateway.client() as client:
        reply = client.get(
            f"/client/v4/accounts/{account[0]}/ai/models/search",
            params=params,
            headers=bearer(account[1]),
        )

    assert reply.status_code == 400
    (error,) = reply.json()["errors"]
    assert error["code"] == 5006
    assert named in error["message"]


def test_admin_accounts_are_listed_page_by_page_oldest_first(gateway: GatewayProcess) -> None:
    created = [gateway.create_account() for _ in range(3)]
    with gateway.client() as client:
        listed = every_item(client, "/admin/v1/accounts", gateway.admin_headers, per_page="2")

    ids = [account["id"] for account in listed]
    assert len(ids) == len(set(ids))
    assert ids[-3:] == created


def test_an_accounts_tokens_are_listed_page_by_page(gateway: GatewayProcess) -> None:
    account_id = gateway.create_account()
    created = [gateway.create_token(account_id)["id"] for _ in range(3)]
    path = f"/admin/v1/accounts/{account_id}/tokens"
    with gateway.client() as client:
        first = client.get(path, params={"per_page": "2"}, headers=gateway.admin_headers).json()
        listed = every_item(client, path, gateway.admin_headers, per_page="2")

    assert first["result_info"] == {
        "page": 1,
        "per_page": 2,
        "count": 2,
        "total_count": 3,
        "total_pages": 2,
    }
    assert [token["id"] for token in listed] == created


def test_usage_records_are_listed_page_by_page_newest_first(gateway: GatewayProcess) -> None:
    account = new_account(gateway)
    for _ in range(3):
        assert run(gateway, account, {"prompt": "Hi", "max_tokens": 1}).status_code == 200
    newest_first = wait_for_records(gateway, 3, account_id=account[0])
    with gateway.client() as client:
        listed = every_item(
            client,
            "/admin/v1/usage/records",
            gateway.admin_headers,
            account_id=account[0],
            per_page="2",
        )

    assert [record["request_id"] for record in listed] == [
        record["request_id"] for record in newest_first
    ]
    assert len({record["request_id"] for record in listed}) == 3
