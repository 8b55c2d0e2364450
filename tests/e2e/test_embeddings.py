"""Text embeddings on the embedded default: all-MiniLM-L6-v2's twin in a real tritonserver,
behind the gateway, called as application developers call it (the official `openai` SDK,
raw HTTP for Workers AI), against the vectors the model's own library made
(tests/build_engines/embedding_twin/golden_vectors.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openai
import pytest

from tests.accounting import bearer, new_account, run, wait_for_records
from tests.gateway_fixtures import GatewayProcess

pytestmark = pytest.mark.triton

MODEL = "@twin/all-minilm-l6-v2/bge-small-en-v1.5"
GOLDEN = json.loads(
    (Path(__file__).parents[1] / "build_engines" / "embedding_twin" / "golden_vectors.json")
    .read_text()
)["texts"]  # fmt: skip
TEXTS = [text["text"] for text in GOLDEN]
CLOSE = 0.99999


@pytest.fixture(scope="module")
def account(smollm2_gateway: GatewayProcess) -> tuple[str, str]:
    return new_account(smollm2_gateway)


def sdk_at(gateway: GatewayProcess, account: tuple[str, str], base: str) -> openai.OpenAI:
    base_url = {
        "token": f"{gateway.base_url}/v1",
        "account": f"{gateway.base_url}/client/v4/accounts/{account[0]}/ai/v1",
    }[base]
    return openai.OpenAI(base_url=base_url, api_key=account[1], max_retries=0)


@pytest.fixture
def sdk(smollm2_gateway: GatewayProcess, account: tuple[str, str]) -> openai.OpenAI:
    return sdk_at(smollm2_gateway, account, "token")


def assert_golden(vectors: list[list[float]], pooling: str = "mean") -> None:
    assert len(vectors) == len(GOLDEN)
    for vector, text in zip(vectors, GOLDEN, strict=True):
        assert np.array(vector) @ np.array(text[pooling]) >= CLOSE, text["text"]


@pytest.mark.parametrize("base", ["token", "account"])
def test_the_sdks_embeddings_match_the_models_own_library(
    smollm2_gateway: GatewayProcess, account: tuple[str, str], base: str
) -> None:
    """At both base URLs; the SDK asks for base64 by default and decodes it."""
    reply = sdk_at(smollm2_gateway, account, base).embeddings.create(model=MODEL, input=TEXTS)
    assert [item.index for item in reply.data] == list(range(len(TEXTS)))
    assert_golden([item.embedding for item in reply.data])
    assert reply.usage.prompt_tokens == sum(len(text["input_ids"]) for text in GOLDEN)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens


def test_float_vectors_are_the_base64_ones(sdk: openai.OpenAI) -> None:
    floats = sdk.embeddings.create(model=MODEL, input=TEXTS[:2], encoding_format="float")
    encoded = sdk.embeddings.create(model=MODEL, input=TEXTS[:2])
    for plain, decoded in zip(floats.data, encoded.data, strict=True):
        assert np.allclose(plain.embedding, decoded.embedding, atol=1e-7)


def test_token_ids_embed_as_their_text_does(sdk: openai.OpenAI) -> None:
    """Token ids without [CLS]/[SEP]: the gateway adds them, as for a text."""
    ids = [text["input_ids"][1:-1] for text in GOLDEN[:3]]
    reply = sdk.embeddings.create(model=MODEL, input=ids)
    for item, text in zip(reply.data, GOLDEN, strict=False):
        assert np.array(item.embedding) @ np.array(text["mean"]) >= CLOSE


def test_workers_ai_returns_shape_data_and_pooling_in_both_poolings(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    for pooling in ("mean", "cls"):
        reply = run(smollm2_gateway, account, {"text": TEXTS, "pooling": pooling}, MODEL)
        assert reply.status_code == 200, reply.text
        result = reply.json()["result"]
        assert result["shape"] == [len(TEXTS), 384]
        assert result["pooling"] == pooling
        assert_golden(result["data"], pooling)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = run(smollm2_gateway, account, {"text": TEXTS[:3]}, MODEL)
    eating, bread, movie = (np.array(vector) for vector in reply.json()["result"]["data"])
    assert eating @ bread > 0.7 > 0.1 > eating @ movie


def test_one_text_is_a_batch_of_one(
    smollm2_gateway: GatewayProcess, account: tuple[str, str]
) -> None:
    reply = run(smollm2_gateway, account, {"text": TEXTS[0]}, MODEL)
    assert reply.json()["result"]["shape"] == [1, 384]


def test_embeddings_are_billed_as_prompt_tokens_and_no_completion_tokens(
    smollm2_gateway: GatewayProcess,
) -> None:
    account_id, token = new_account(smollm2_gateway)
    with smollm2_gateway.client() as client:
        reply = client.post(
            "/v1/embeddings", json={"model": MODEL, "input": TEXTS[:3]}, headers=bearer(token)
        )
    assert reply.status_code == 200, reply.text
    (record,) = wait_for_records(smollm2_gateway, 1, account_id=account_id)
    assert record["model"] == MODEL
    assert record["status"] == "ok"
    assert record["prompt_tokens"] == reply.json()["usage"]["prompt_tokens"] == 8 + 11 + 8
    assert record["completion_tokens"] == 0
