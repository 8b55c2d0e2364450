"""Cloudflare's official Python SDK against the gateway, unchanged but for its base URL, on
the embedded default (SmolLM2-135M-Instruct in both twins), as a Workers AI user calls it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import cloudflare
import httpx
import pytest

from tests.accounting import new_account
from tests.e2e.test_openai_sdk import FP16, INT8
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton

GREEDY = {"temperature": 0, "max_tokens": 24}
MINILM = "@twin/all-minilm-l6-v2/bge-small-en-v1.5"


@pytest.fixture(scope="module")
def account(smollm2_gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(smollm2_gateway)


def sdk_for(gateway: GatewayProcess, token: str, **options: Any) -> cloudflare.Cloudflare:
    """No retries, so that each refusal is seen once."""
    return cloudflare.Cloudflare(
        api_token=token, base_url=f"{gateway.base_url}/client/v4", max_retries=0, **options
    )


@pytest.fixture
def sdk(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> Iterator[cloudflare.Cloudflare]:
    with sdk_for(smollm2_gateway, account[1]) as client:
        yield client


MOST_MODELS = 10
"""More than the catalog holds: a list that never ends is cut there, and fails as duplicates."""


def model_names(sdk: cloudflare.Cloudflare, account_id: str, **filters: Any) -> list[str]:
    """The SDK's auto-paging iteration, as far as it goes (or `MOST_MODELS`)."""
    models = sdk.ai.models.list(account_id=account_id, **filters)
    return [model["name"] for model in itertools.islice(models, MOST_MODELS)]  # type: ignore[index]


def test_models_list_returns_every_model_once(
    sdk: cloudflare.Cloudflare, account: tuple[str, str]
) -> None:
    assert sorted(model_names(sdk, account[0])) == sorted([INT8, FP16, MINILM])


def test_models_list_pages_one_model_at_a_time_and_stops(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    asked: list[httpx.URL] = []
    http = httpx.Client(event_hooks={"request": [lambda request: asked.append(request.url)]})
    with sdk_for(smollm2_gateway, account[1], http_client=http) as sdk:
        names = model_names(sdk, account[0], per_page=1)

    assert sorted(names) == sorted([INT8, FP16, MINILM])
    assert [url.params["page"] for url in asked[1:]] == ["2", "3", "4"]


def test_models_list_finds_a_model_by_text_in_its_name(
    sdk: cloudflare.Cloudflare, account: tuple[str, str]
) -> None:
    assert model_names(sdk, account[0], search="CHAT-FP16") == [FP16]


def test_models_list_filters_by_task_name(
    sdk: cloudflare.Cloudflare, account: tuple[str, str]
) -> None:
    assert len(model_names(sdk, account[0], task="text generation")) == 2
    assert model_names(sdk, account[0], task="Text Embeddings") == [MINILM]


def test_run_with_texts_embeds_them(sdk: cloudflare.Cloudflare, account: tuple[str, str]) -> None:
    result = sdk.ai.run(MINILM, account_id=account[0], text=["A man is eating food.", "x"])

    assert isinstance(result, dict)
    assert result["shape"] == [2, 384]
    assert result["pooling"] == "mean"
    assert [len(vector) for vector in result["data"]] == [384, 384]


def test_run_with_a_prompt_answers(sdk: cloudflare.Cloudflare, account: tuple[str, str]) -> None:
    result = sdk.ai.run(
        INT8, account_id=account[0], prompt="What is the capital of France?", **GREEDY
    )

    assert isinstance(result, dict)
    assert "Paris" in result["response"]
    assert result["usage"]["completion_tokens"] > 0


def test_run_with_messages_answers(sdk: cloudflare.Cloudflare, account: tuple[str, str]) -> None:
    result = sdk.ai.run(
        FP16,
        account_id=account[0],
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        **GREEDY,
    )

    assert isinstance(result, dict)
    assert "Paris" in result["response"]


def test_a_bad_token_is_the_sdks_authentication_error(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    with (
        sdk_for(smollm2_gateway, "not-a-token") as sdk,
        pytest.raises(cloudflare.AuthenticationError) as refused,
    ):
        sdk.ai.run(INT8, account_id=account[0], prompt="Hi")

    assert refused.value.status_code == 401
    assert refused.value.response.json()["errors"][0]["code"] == 10000


def test_an_unknown_model_is_the_sdks_not_found_error(
    sdk: cloudflare.Cloudflare, account: tuple[str, str]
) -> None:
    with pytest.raises(cloudflare.NotFoundError) as refused:
        sdk.ai.run("@cf/meta/no-such-model", account_id=account[0], prompt="Hi")

    (error,) = refused.value.response.json()["errors"]
    assert error["code"] == 3042
    assert "no-such-model" in error["message"]
