"""The gateway serves with neither the engine builder nor the local runtime importable: a run
through a gateway process where importing them fails proves that no import of them hides
behind a function call, where the static layer contract (`lint-imports`) cannot see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.triton_server import TritonServer
from tests.accounting import bearer, new_account, run_url, wait_for_records
from tests.e2e.sse import stream_run
from tests.gateway_fixtures import DatabaseFactory, GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def gateway_alone(
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    gateways = GatewayFactory(
        database_factory, triton, cpu_model_repository, tmp_path_factory.mktemp("alone")
    )
    yield gateways(blocked_packages=("build_engines", "local_runtime"))
    for process in gateways.started:
        process.stop()


def test_a_gateway_that_cannot_import_the_builder_streams_a_run_and_records_it(
    gateway_alone: GatewayProcess,
) -> None:
    account_id, token = new_account(gateway_alone)
    with gateway_alone.client() as client:
        events = stream_run(
            client, run_url(account_id), token, {"prompt": "Hello", "max_tokens": 12, "seed": 3}
        )
    assert events.status_code == 200
    assert events.data[-1] == "[DONE]"
    usage = events.json_events[-1]["usage"]
    [record] = wait_for_records(gateway_alone, 1, account_id=account_id)
    assert record["status"] == "ok"
    assert record["completion_tokens"] == usage["completion_tokens"] > 0  # type: ignore[index]


def test_a_gateway_that_cannot_import_the_builder_answers_the_openai_api(
    gateway_alone: GatewayProcess,
) -> None:
    _, token = new_account(gateway_alone)
    with gateway_alone.client() as client:
        reply = client.post(
            "/v1/chat/completions",
            json={
                "model": "@twin/random/llama-2-7b-chat-fp16",
                "messages": [{"role": "user", "content": "Hello"}],
                "max_tokens": 8,
            },
            headers=bearer(token),
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["completion_tokens"] > 0
