"""A run request's messages and characters are bounded before any template renders them, and
a long render happens off the event loop, within a time limit."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway_fixtures import GatewayFactory, GatewayProcess

SLOW_MODEL = "@test/slow-template"
SLOW_TEMPLATE = (
    "{% for m in messages %}{% for i in range(100000) %}{% for j in range(10) %}{% endfor %}"
    "{% endfor %}{{ m.content }}{% endfor %}"
)
"""~0.15 s a message: a template slow enough to show where, and for how long, it renders."""


@pytest.fixture(scope="module")
def bounded_gateway(
    module_gateway_factory: GatewayFactory,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewayProcess:
    tokenizer = cpu_model_repository / "llama2_7b_chat_int8_tensorrt_llm" / "tokenizer"
    entries = [
        {
            "name": name, "triton_model": "llama2_7b_chat_int8_tensorrt_llm",
            "tokenizer_dir": str(tokenizer), "max_input_tokens": 2048, "max_output_tokens": 1800,
            "precision": "int8", "description": "", **extra,
        }
        for name, extra in [("@test/model", {}), (SLOW_MODEL, {"chat_template": SLOW_TEMPLATE})]
    ]  # fmt: skip
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.json"
    catalog.write_text(json.dumps({"models": entries}))
    return module_gateway_factory(
        GATEWAY_CATALOG_FILE=str(catalog),
        GATEWAY_MAX_MESSAGES="40",
        GATEWAY_MAX_PROMPT_CHARACTERS="10000",
    )


@pytest.fixture(scope="module")
def run_url(bounded_gateway: GatewayProcess) -> tuple[str, dict[str, str]]:
    account_id = bounded_gateway.create_account()
    token = bounded_gateway.create_token(account_id)["token"]
    return (
        f"{bounded_gateway.base_url}/client/v4/accounts/{account_id}/ai/run/",
        {"Authorization": f"Bearer {token}"},
    )


def run(run_url: tuple[str, dict[str, str]], model: str, body: dict[str, object]) -> httpx.Response:
    url, headers = run_url
    return httpx.post(url + model, json={"max_tokens": 1, **body}, headers=headers, timeout=30)


def messages(count: int, content: str = "") -> list[dict[str, str]]:
    """A conversation (user and assistant taking turns, as Llama-2's template demands)."""
    return [
        {"role": ("user", "assistant")[index % 2], "content": content} for index in range(count)
    ]


def test_more_messages_than_the_limit_are_refused_with_the_limit(
    run_url: tuple[str, dict[str, str]],
) -> None:
    reply = run(run_url, "@test/model", {"messages": messages(41)})

    assert reply.status_code == 400
    assert reply.json()["errors"] == [
        {"code": 5006, "message": "Bad input: 41 messages, over the limit of 40 per request"}
    ]


def test_messages_over_the_character_limit_are_refused_before_rendering(
    run_url: tuple[str, dict[str, str]],
) -> None:
    conversation = messages(30, "x" * 400)
    characters = sum(len(message["role"]) + len(message["content"]) for message in conversation)

    reply = run(run_url, SLOW_MODEL, {"messages": conversation})

    assert reply.status_code == 400
    assert f"{characters} characters of input, over the limit of 10000" in reply.text


def test_a_prompt_over_the_character_limit_is_refused(
    run_url: tuple[str, dict[str, str]],
) -> None:
    reply = run(run_url, "@test/model", {"prompt": "x" * 10_001, "raw": True})

    assert reply.status_code == 400
    assert "10001 characters of input, over the limit of 10000" in reply.text


def test_messages_within_the_limits_are_served(run_url: tuple[str, dict[str, str]]) -> None:
    reply = run(run_url, "@test/model", {"messages": messages(39, "hello")})

    assert reply.status_code == 200, reply.text


def test_a_render_over_the_time_limit_is_refused_while_the_gateway_serves_others(
    bounded_gateway: GatewayProcess, run_url: tuple[str, dict[str, str]]
) -> None:
    replies: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: replies.append(run(run_url, SLOW_MODEL, {"messages": messages(30)}))
    )
    slow.start()
    time.sleep(0.5)  # the render has begun
    health_seconds = []
    while slow.is_alive():
        began = time.monotonic()
        httpx.get(f"{bounded_gateway.base_url}/healthz", timeout=30)
        health_seconds.append(time.monotonic() - began)
        time.sleep(0.1)
    slow.join()

    assert replies[0].status_code == 400
    assert "chat template took over 2 s" in replies[0].text
    assert max(health_seconds) < 0.5


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_render_over_the_time_limit_stops_instead_of_running_on(
    bounded_gateway: GatewayProcess, run_url: tuple[str, dict[str, str]]
) -> None:
    """Its 30 messages take ~4.5 s: refused at 2 s, the render must not use a core after."""
    reply = run(run_url, SLOW_MODEL, {"messages": messages(30)})
    used_before = cpu_seconds(bounded_gateway.process.pid)
    time.sleep(1.0)
    used = cpu_seconds(bounded_gateway.process.pid) - used_before

    assert reply.status_code == 400
    assert used < 0.5
