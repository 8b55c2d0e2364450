"""Triton's own `generate_stream` SSE endpoint on the text path: ensemble and BLS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import GENERATION_COMPONENT, TEXT_PATH_COMPONENTS
from local_runtime.triton_server import TritonServer

pytestmark = pytest.mark.triton
SPEC = ENGINE_SPECS["int8"]


@pytest.fixture(scope="module")
def triton(
    cpu_model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """A Triton of the module's own with int8's whole text path: the session's serves the
    models the gateway calls, and starts and stops without the text path's Python stubs."""
    models = [SPEC.triton_model(c) for c in (GENERATION_COMPONENT, *TEXT_PATH_COMPONENTS)]
    server = TritonServer.on_free_ports(
        cpu_model_repository,
        log_path=tmp_path_factory.mktemp("text-path-triton") / "tritonserver.log",
        models=models,
    )
    with server:
        yield server


def generate_stream(
    triton: TritonServer, model: str, body: dict[str, object]
) -> list[dict[str, object]]:
    """The `data:` events; Triton answers 400 when the first response is already an error."""
    events = []
    with httpx.stream(
        "POST", f"{triton.http_url}/v2/models/{model}/generate_stream", json=body, timeout=30
    ) as reply:
        assert reply.status_code in (200, 400), reply.read()
        for line in reply.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events


@pytest.mark.parametrize("component", ["ensemble", "bls"])
def test_generate_stream_returns_text_for_a_prompt(triton: TritonServer, component: str) -> None:
    events = generate_stream(
        triton,
        SPEC.triton_model(component),
        {"text_input": "Tell me a story about the sea", "max_tokens": 12, "stream": True},
    )
    assert events, "no events"
    assert not [event for event in events if "error" in event]
    assert "".join(str(event["text_output"]) for event in events).strip()


def test_bls_stream_concatenates_to_the_non_streamed_text(triton: TritonServer) -> None:
    body: dict[str, object] = {"text_input": "Grüße, 東京 🚀", "max_tokens": 40, "temperature": 0.0}
    streamed = generate_stream(triton, SPEC.triton_model("bls"), {**body, "stream": True})
    whole = httpx.post(
        f"{triton.http_url}/v2/models/{SPEC.triton_model('bls')}/generate",
        json={**body, "stream": False},
        timeout=30,
    )
    assert whole.status_code == 200, whole.text
    assert "".join(str(event["text_output"]) for event in streamed) == whole.json()["text_output"]


def test_generate_stream_reports_limit_errors_as_events(triton: TritonServer) -> None:
    events = generate_stream(
        triton,
        SPEC.triton_model("bls"),
        {"text_input": "hello", "max_tokens": SPEC.limits.max_output_len + 1, "stream": True},
    )
    assert any("exceeds the model's maximum output" in str(event.get("error")) for event in events)


def test_ensemble_non_streamed_text_excludes_the_prompt(triton: TritonServer) -> None:
    prompt = "The quick brown fox"
    reply = httpx.post(
        f"{triton.http_url}/v2/models/{SPEC.triton_model('ensemble')}/generate",
        json={"text_input": prompt, "max_tokens": 8, "temperature": 0.0},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert not reply.json()["text_output"].startswith(prompt)
