"""Triton dies mid-stream and comes back: streams end with an error event and are billed
what they delivered, the gateway keeps serving, and recovers by itself."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import openai
import pytest

from local_runtime.ports import free_port
from local_runtime.triton_server import TritonServer
from tests.accounting import INT8, RawStream, new_account, run, wait_for_records
from tests.e2e.test_openai_sdk import sdk_for
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
LONG = {"prompt": "Once upon a time", "max_tokens": 1500, "seed": 4}
"""Seed 4 samples 1,189 tokens before the end token: still streaming when Triton dies."""


def kill(triton: TritonServer) -> None:
    assert triton.process is not None
    os.killpg(triton.process.pid, signal.SIGKILL)
    triton.process.wait(10)


def readiness(gateway: GatewayProcess) -> int:
    return httpx.get(f"{gateway.base_url}/readyz", timeout=10).status_code


def wait_for_readiness(gateway: GatewayProcess, status: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if readiness(gateway) == status:
            return True
        time.sleep(0.25)
    return False


def test_streams_cut_by_a_dying_backend_end_with_an_error_event_and_are_billed(
    gateway_factory: GatewayFactory, own_triton: TritonServer
) -> None:
    gateway = gateway_factory("postgresql", TRITON_GRPC_URL=own_triton.grpc_url)
    account = new_account(gateway)
    streams = [RawStream(gateway, account, LONG) for _ in range(4)]
    for stream in streams:
        stream.read_events(2)
    kill(own_triton)
    for stream in streams:
        stream.read_to_end()
    records = {str(r["request_id"]): r for r in wait_for_records(gateway, 4, account_id=account[0])}
    for stream in streams:
        last = json.loads(stream.events[-1][0])
        assert last["success"] is False
        assert last["errors"][0]["code"] in (3045, 3046)
        record = records[stream.request_id]
        assert record["status"] == "backend_error"
        assert record["completion_tokens"] == stream.last_event_id > 0


def test_an_openai_stream_cut_by_a_dying_backend_raises_the_error_event_in_the_sdk(
    gateway_factory: GatewayFactory, own_triton: TritonServer
) -> None:
    gateway = gateway_factory("sqlite", TRITON_GRPC_URL=own_triton.grpc_url)
    account = new_account(gateway)
    messages = [{"role": "user", "content": LONG["prompt"]}]
    with sdk_for(gateway, account) as sdk:
        stream = sdk.chat.completions.create(
            model=INT8,
            messages=messages,
            max_tokens=1500,
            seed=4,
            stream=True,  # type: ignore[arg-type]
        )
        chunks = iter(stream)
        next(chunks), next(chunks)
        kill(own_triton)
        with pytest.raises(openai.APIError) as failed:
            for _ in chunks:
                pass
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["code"] in ("backend_error", "backend_unavailable")
    request_id = stream.response.headers["x-request-id"]
    [record] = wait_for_records(gateway, 1, request_id=request_id)
    assert record["status"] == "backend_error"


def test_an_unreachable_backend_is_a_503_before_an_openai_stream_begins(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("sqlite", TRITON_GRPC_URL=f"127.0.0.1:{free_port()}")
    account = new_account(gateway)
    with sdk_for(gateway, account) as sdk, pytest.raises(openai.InternalServerError) as failed:
        sdk.chat.completions.create(
            model=INT8, messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
    assert failed.value.status_code == 503
    assert failed.value.code == "backend_unavailable"


def test_the_gateway_serves_and_reports_unready_while_the_backend_is_down(
    gateway_factory: GatewayFactory, own_triton: TritonServer
) -> None:
    gateway = gateway_factory("sqlite", TRITON_GRPC_URL=own_triton.grpc_url)
    account = new_account(gateway)
    kill(own_triton)
    started = time.monotonic()
    refused = run(gateway, account, {"prompt": "hi", "max_tokens": 4})
    assert refused.status_code == 503
    assert time.monotonic() - started < 5
    assert refused.json()["errors"][0]["code"] == 3045
    assert httpx.get(f"{gateway.base_url}/healthz", timeout=5).status_code == 200
    assert wait_for_readiness(gateway, 503, timeout=10)


def test_the_gateway_recovers_by_itself_when_the_backend_returns(
    gateway_factory: GatewayFactory, own_triton: TritonServer
) -> None:
    gateway = gateway_factory("sqlite", TRITON_GRPC_URL=own_triton.grpc_url)
    account = new_account(gateway)
    kill(own_triton)
    assert wait_for_readiness(gateway, 503, timeout=10)
    own_triton.start()
    assert wait_for_readiness(gateway, 200, timeout=60)
    assert run(gateway, account, {"prompt": "hi", "max_tokens": 4}).status_code == 200


def test_a_triton_that_exited_is_restarted_on_its_ports_with_its_log_kept(
    own_triton: TritonServer,
) -> None:
    """What `gateway up` and the test session do when Triton 24.10 crashes (upstream bug)."""
    assert own_triton.log_path is not None
    kill(own_triton)
    assert own_triton.restart_if_exited() == -signal.SIGKILL
    assert own_triton.is_ready()
    assert len(list(own_triton.log_path.parent.glob("tritonserver.exited-*.log"))) == 1
    assert own_triton.restart_if_exited() is None
