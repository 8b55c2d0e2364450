"""The BLS model: text in, text out through the generation model, detokenized incrementally."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from build_engines.text_models.tokenizer import TextTokenizer
from tests.build_engines.text_models.conftest import GENERATION_MODEL, MAX_OUTPUT_LEN, MakeModel
from tests.build_engines.text_models.doubles import FakeGenerationModel, text_request
from tests.python_backend_doubles import FakeRequest, FakeTritonError, RecordingSender

REPLY = "Grüße, 東京 🚀"


@pytest.fixture
def bls(make_model: MakeModel) -> Any:
    return make_model("bls")


@pytest.fixture
def replying(generation: FakeGenerationModel, tokenizer: TextTokenizer) -> FakeGenerationModel:
    generation.reply_ids = tokenizer.encode_word(REPLY)
    return generation


def serve(bls: Any, request: FakeRequest) -> RecordingSender:
    bls.execute([request])
    return request.sender.wait()


def ask(bls: Any, **inputs: Any) -> RecordingSender:
    return serve(bls, text_request(**{"text_input": "Say hello", "max_tokens": 20, **inputs}))


def test_streamed_pieces_join_to_the_whole_text(bls: Any, replying: FakeGenerationModel) -> None:
    assert "".join(ask(bls, stream=True).texts) == REPLY


def test_streaming_sends_each_non_empty_piece_then_the_final_flag(
    bls: Any, replying: FakeGenerationModel
) -> None:
    sender = ask(bls, stream=True)
    assert all(sender.texts)
    assert len(sender.texts) > 1
    assert sender.final_flags == [False] * (len(sender.responses) - 1) + [True]


def test_without_stream_one_response_carries_the_text_and_the_final_flag(
    bls: Any, replying: FakeGenerationModel
) -> None:
    sender = ask(bls, stream=False)
    assert sender.texts == [REPLY]
    assert sender.final_flags == [True]


def test_the_generation_model_is_asked_to_stream_the_prompt_ids(
    bls: Any, replying: FakeGenerationModel, tokenizer: TextTokenizer
) -> None:
    ask(bls, stream=False)
    (call,) = replying.generation_calls
    assert call.model_name == GENERATION_MODEL
    assert call.requested_output_names == ["output_ids", "sequence_length"]
    assert call.inputs["input_ids"].tolist() == [tokenizer.encode_prompt("Say hello")]
    assert call.scalar("input_lengths") == len(tokenizer.encode_prompt("Say hello"))
    assert call.scalar("request_output_len") == 20
    assert call.scalar("streaming") is True


def test_end_and_pad_ids_default_to_the_end_of_sequence_token(
    bls: Any, replying: FakeGenerationModel, tokenizer: TextTokenizer
) -> None:
    ask(bls)
    (call,) = replying.generation_calls
    assert call.scalar("end_id") == call.scalar("pad_id") == tokenizer.end_id


def test_sampling_inputs_reach_the_generation_model_under_its_names(
    bls: Any, replying: FakeGenerationModel
) -> None:
    ask(bls, top_k=5, top_p=0.5, temperature=0.25, seed=7, min_tokens=2)
    (call,) = replying.generation_calls
    assert call.scalar("runtime_top_k") == 5
    assert call.scalar("runtime_top_p") == 0.5
    assert call.scalar("temperature") == 0.25
    assert call.inputs["seed"].dtype == np.uint64
    assert call.scalar("min_tokens") == 2


def test_inputs_the_client_leaves_out_stay_absent(bls: Any, replying: FakeGenerationModel) -> None:
    ask(bls)
    (call,) = replying.generation_calls
    assert not {"temperature", "runtime_top_k", "stop_words_list", "bad_words_list"} & set(
        call.inputs
    )


def test_stop_words_reach_the_generation_model_as_a_words_list(
    bls: Any, replying: FakeGenerationModel, tokenizer: TextTokenizer
) -> None:
    ask(bls, stop_words=["the sea"])
    (call,) = replying.generation_calls
    sea = tokenizer.encode_word("the sea")
    assert call.inputs["stop_words_list"].tolist() == [[sea, [len(sea)] + [-1] * (len(sea) - 1)]]


def test_stream_and_non_stream_give_the_same_text(bls: Any, replying: FakeGenerationModel) -> None:
    assert "".join(ask(bls, stream=True).texts) == ask(bls, stream=False).texts[0]


def test_an_empty_final_response_from_the_generation_model_adds_nothing(
    bls: Any, replying: FakeGenerationModel
) -> None:
    replying.empty_final = True
    assert ask(bls, stream=False).texts == [REPLY]


def test_including_the_input_puts_the_prompt_text_first(
    bls: Any, replying: FakeGenerationModel, tokenizer: TextTokenizer
) -> None:
    sender = ask(bls, stream=False, exclude_input_in_output=False)
    assert sender.texts == [
        tokenizer.decode(tokenizer.encode_prompt("Say hello") + replying.reply_ids)
    ]


def test_generation_errors_reach_the_client_as_a_final_error(
    bls: Any, generation: FakeGenerationModel
) -> None:
    generation.error = "request_output_len 20 exceeds the model's maximum output"
    sender = ask(bls, stream=True)
    assert [error.message() for error in sender.errors] == [generation.error]
    assert sender.final_flags == [True]


def test_generation_errors_keep_their_triton_error_code(
    bls: Any, generation: FakeGenerationModel
) -> None:
    generation.error, generation.error_code = "bad top_p", FakeTritonError.INVALID_ARG
    assert ask(bls).errors[0].code() == FakeTritonError.INVALID_ARG


def test_limit_errors_are_the_clients_mistake(bls: Any, replying: FakeGenerationModel) -> None:
    assert ask(bls, max_tokens=0).errors[0].code() == FakeTritonError.INVALID_ARG


def test_limits_are_checked_before_the_generation_model_is_called(
    bls: Any, replying: FakeGenerationModel
) -> None:
    sender = ask(bls, max_tokens=MAX_OUTPUT_LEN + 1)
    assert "exceeds the model's maximum output" in sender.errors[0].message()
    assert not replying.calls


def test_a_batch_of_prompts_is_refused(bls: Any, replying: FakeGenerationModel) -> None:
    request = FakeRequest(
        {
            "text_input": np.array([[b"one"], [b"two"]], dtype=np.object_),
            "max_tokens": np.array([[4], [4]], dtype=np.int32),
        }
    )
    assert "one prompt per request" in serve(bls, request).errors[0].message()


def test_a_request_cancelled_midway_stops_its_generation_by_request_id(
    bls: Any, replying: FakeGenerationModel
) -> None:
    request = text_request(text_input="Say hello", max_tokens=20, stream=True)
    request.cancel_after_responses = 1
    sender = serve(bls, request)
    (generation_call,) = replying.generation_calls
    assert replying.stopped == {generation_call.request_id}
    assert len(sender.texts) == 1
    assert sender.errors[-1].code() == FakeTritonError.CANCELLED
    assert sender.final_flags[-1]


def test_a_request_cancelled_before_it_starts_never_reaches_the_generation_model(
    bls: Any, replying: FakeGenerationModel
) -> None:
    request = text_request(text_input="Say hello", max_tokens=20, stream=True)
    request.cancelled = True
    assert serve(bls, request).errors[0].code() == FakeTritonError.CANCELLED
    assert not replying.calls


def test_each_generation_has_its_own_request_id(bls: Any, replying: FakeGenerationModel) -> None:
    for _ in range(2):
        serve(bls, text_request("same-client-id", text_input="hi", max_tokens=4))
    first, second = replying.generation_calls
    assert first.request_id != second.request_id


def test_a_generation_that_fails_midway_ends_the_stream_with_an_error(
    bls: Any, replying: FakeGenerationModel
) -> None:
    replying.fail_after = 3
    sender = ask(bls, stream=True)
    assert "stream failed" in sender.errors[-1].message()
    assert sender.errors[-1].code() == FakeTritonError.INTERNAL
    assert sender.final_flags[-1]


def test_streams_of_two_requests_progress_together(bls: Any, replying: FakeGenerationModel) -> None:
    """Each generation waits for the other to start: served one after the other, both fail."""
    replying.barrier = threading.Barrier(2)
    requests = [text_request(text_input="hi", max_tokens=4, stream=True) for _ in range(2)]
    bls.execute(requests)
    for request in requests:
        assert "".join(request.sender.wait().texts) == REPLY
