"""The Triton model through a stand-in `triton_python_backend_utils`: tensors, flags, errors,
metrics and logs as Triton would see them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.build_engines.cpu_twin.doubles import PROMPT, triton_request
from tests.python_backend_doubles import FINAL, FakeLogger, FakeMetricFamily, FakeRequest

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


def only_error(request: FakeRequest) -> str:
    """The message of the one, final, error response a request got."""
    ((response, flags),) = request.sender.wait().responses
    assert flags == FINAL
    assert response is not None
    error = response.error()
    assert error is not None
    return str(error.message())


def requests_total(**labels: str) -> float:
    return FakeMetricFamily.created["cpu_twin_requests_total"].value(**labels)


def test_execute_returns_at_once_and_streams_batch_beam_token_tensors(model: Any) -> None:
    request = triton_request(PROMPT, 5, streaming=True)
    assert model.execute([request]) is None
    responses = request.sender.wait().responses
    assert len(responses) == 5
    for index, (response, flags) in enumerate(responses):
        assert response is not None
        assert response.output("output_ids").shape == (1, 1, 1)
        assert response.output("output_ids").dtype == np.int32
        assert response.output("sequence_length").tolist() == [[index + 1]]
        assert flags == (FINAL if index == 4 else 0)


@pytest.mark.parametrize(
    ("requested", "missing"),
    [(["output_ids"], "sequence_length"), (["sequence_length"], "output_ids")],
)
def test_a_request_not_asking_for_both_outputs_gets_the_backends_error(
    model: Any, requested: list[str], missing: str
) -> None:
    """TensorRT-LLM's backend fails every response of such a request (fillTritonResponse)."""
    request = triton_request(PROMPT, 3, streaming=True, requested_outputs=requested)
    model.execute([request])
    assert only_error(request) == f"{missing} tensor must be present in list of output tensors"
    assert requests_total(model="twin", outcome="error") == 1


def test_non_streaming_returns_input_and_output_once(model: Any) -> None:
    request = triton_request(PROMPT, 5)
    model.execute([request])
    ((response, flags),) = request.sender.wait().responses
    assert flags == FINAL
    assert response is not None
    assert response.output("output_ids").shape == (1, 1, len(PROMPT) + 5)
    assert request.sender.token_ids[: len(PROMPT)] == PROMPT


def test_exclude_input_in_output_returns_only_generated_tokens(model: Any) -> None:
    request = triton_request(PROMPT, 5, exclude_input_in_output=True)
    model.execute([request])
    assert len(request.sender.wait().token_ids) == 5


@pytest.mark.parametrize(
    ("input_len", "output_len", "message"),
    [
        (65, 4, "input length 65 exceeds the model's context length of 64 tokens by 1"),
        (8, 201, "request_output_len 201 exceeds the model's maximum output of 200 tokens by 1"),
    ],
)
def test_limits_are_error_responses_with_the_excess(
    model: Any, input_len: int, output_len: int, message: str
) -> None:
    request = triton_request([5] * input_len, output_len, streaming=True)
    model.execute([request])
    assert only_error(request) == message
    assert requests_total(model="twin", outcome="error") == 1


def test_a_rejected_request_does_not_stop_the_others(model: Any) -> None:
    bad, good = triton_request([1, 9999], 4), triton_request(PROMPT, 3, streaming=True)
    model.execute([bad, good])
    assert "outside the vocabulary" in (bad.sender.wait().error or "")
    assert len(good.sender.wait().token_ids) == 3


def test_metrics_count_outcomes_and_tokens(model: Any) -> None:
    request = triton_request(PROMPT, 6, streaming=True)
    model.execute([request])
    request.sender.wait()
    deadline = time.monotonic() + 5
    while requests_total(outcome="length") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    tokens = FakeMetricFamily.created["cpu_twin_generated_tokens_total"]
    assert tokens.value(model="twin") == 6
    assert FakeMetricFamily.created["cpu_twin_active_requests"].kind == FakeMetricFamily.GAUGE


def test_cancellation_is_logged_and_counted(make_model: Callable[..., Any]) -> None:
    model = make_model(decode_tokens_per_second=200.0)
    request = triton_request(PROMPT, 200, "abc", streaming=True)
    model.execute([request])
    while len(request.sender.responses) < 3:
        time.sleep(0.005)
    request.cancelled = True
    deadline = time.monotonic() + 5
    while requests_total(outcome="cancelled") < 1:
        assert time.monotonic() < deadline, "cancellation never noticed"
        time.sleep(0.01)
    assert any(
        line.startswith("cpu_twin: request abc cancelled after ") for line in FakeLogger.lines
    )
    assert "cancelled" in (request.sender.wait().error or "")


def test_a_stop_request_ends_its_target_and_itself_with_empty_finals(
    make_model: Callable[..., Any],
) -> None:
    model = make_model(decode_tokens_per_second=200.0)
    target = triton_request(PROMPT, 200, "r7", streaming=True)
    model.execute([target])
    while not target.sender.responses:
        time.sleep(0.005)
    stop = triton_request(PROMPT, 1, "r7", stop=True)
    model.execute([stop])
    assert stop.sender.wait().responses == [(None, FINAL)]
    assert target.sender.wait().responses[-1] == (None, FINAL)
    assert len(target.sender.token_ids) < 200


def test_finalize_ends_open_requests_with_an_error(make_model: Callable[..., Any]) -> None:
    model = make_model(decode_tokens_per_second=100.0)
    request = triton_request(PROMPT, 200, streaming=True)
    model.execute([request])
    while not request.sender.responses:
        time.sleep(0.005)
    model.finalize()
    assert "unloaded" in (request.sender.wait().error or "")


def test_beam_search_is_refused(model: Any) -> None:
    request: FakeRequest = triton_request(PROMPT, 4, beam_width=4)
    model.execute([request])
    assert "beam_width 4 is not supported" in (request.sender.wait().error or "")
