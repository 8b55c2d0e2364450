"""The preprocessing model: prompts to TensorRT-LLM's input tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from build_engines.text_models.tokenizer import TextTokenizer
from tests.build_engines.text_models.conftest import MAX_INPUT_LEN, MAX_OUTPUT_LEN, MakeModel
from tests.python_backend_doubles import FakeInferenceResponse, FakeRequest


def request(queries: list[str], output_len: int = 8, **optional: Any) -> FakeRequest:
    inputs: dict[str, npt.NDArray[Any]] = {
        "QUERY": np.array([[query.encode()] for query in queries], dtype=np.object_),
        "REQUEST_OUTPUT_LEN": np.full((len(queries), 1), output_len, np.int32),
    }
    for name, value in optional.items():
        dtype = np.object_ if name.endswith("_DICT") else np.int32
        inputs[name] = np.array(value, dtype=dtype)
    return FakeRequest(inputs)


@pytest.fixture
def preprocess(make_model: MakeModel) -> Any:
    model = make_model("preprocessing")

    def run(fake: FakeRequest) -> FakeInferenceResponse:
        (response,) = model.execute([fake])
        return response  # type: ignore[no-any-return]

    return run


def test_prompt_ids_are_the_tokenizers_with_a_leading_bos(
    preprocess: Any, tokenizer: TextTokenizer
) -> None:
    response = preprocess(request(["Grüße, 東京 🚀"]))
    ids = response.output("INPUT_ID")[0].tolist()
    assert ids[0] == tokenizer.tokenizer.token_to_id("<s>")
    assert ids == tokenizer.encode_prompt("Grüße, 東京 🚀")


def test_input_length_counts_the_prompt_tokens(preprocess: Any, tokenizer: TextTokenizer) -> None:
    response = preprocess(request(["hello world"]))
    assert response.output("REQUEST_INPUT_LEN").tolist() == [
        [len(tokenizer.encode_prompt("hello world"))]
    ]


def test_output_length_passes_through(preprocess: Any) -> None:
    assert preprocess(request(["hi"], output_len=17)).output("REQUEST_OUTPUT_LEN").tolist() == [
        [17]
    ]


def test_end_and_pad_ids_default_to_the_end_of_sequence_token(
    preprocess: Any, tokenizer: TextTokenizer
) -> None:
    response = preprocess(request(["hi"]))
    end_id = tokenizer.tokenizer.token_to_id("</s>")
    assert response.output("OUT_END_ID").tolist() == [[end_id]]
    assert response.output("OUT_PAD_ID").tolist() == [[end_id]]


def test_an_end_id_sent_by_the_client_is_kept(preprocess: Any) -> None:
    assert preprocess(request(["hi"], END_ID=[[7]])).output("OUT_END_ID").tolist() == [[7]]


def test_stop_words_become_a_words_list(preprocess: Any, tokenizer: TextTokenizer) -> None:
    response = preprocess(request(["hi"], STOP_WORDS_DICT=[[b"the sea", b"ship"]]))
    sea, ship = tokenizer.encode_word("the sea"), tokenizer.encode_word("ship")
    ends = [len(sea), len(sea) + len(ship)]
    padding = [-1] * (len(sea) + len(ship) - 2)
    assert response.output("STOP_WORDS_IDS").tolist() == [[[*sea, *ship], [*ends, *padding]]]


def test_without_bad_words_the_list_is_empty(preprocess: Any) -> None:
    assert preprocess(request(["hi"])).output("BAD_WORDS_IDS").shape == (1, 2, 0)


def test_a_batch_of_prompts_is_padded_with_the_pad_id(
    preprocess: Any, tokenizer: TextTokenizer
) -> None:
    response = preprocess(request(["hi", "a much longer prompt"]))
    short = tokenizer.encode_prompt("hi")
    ids = response.output("INPUT_ID")
    assert ids[0, len(short) :].tolist() == [tokenizer.pad_id] * (ids.shape[1] - len(short))
    assert response.output("REQUEST_INPUT_LEN")[:, 0].tolist() == [
        len(short),
        len(tokenizer.encode_prompt("a much longer prompt")),
    ]


def test_a_prompt_over_the_context_length_is_an_error(preprocess: Any) -> None:
    response = preprocess(request(["word " * MAX_INPUT_LEN]))
    assert "exceeds the model's context length" in response.error().message()


def test_an_output_length_over_the_limit_is_an_error(preprocess: Any) -> None:
    response = preprocess(request(["hi"], output_len=MAX_OUTPUT_LEN + 1))
    assert "exceeds the model's maximum output of 50 tokens by 1" in response.error().message()
