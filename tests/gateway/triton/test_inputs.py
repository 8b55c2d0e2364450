"""The tensors the gateway sends, read back by the CPU twin as the backend reads them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from build_engines.cpu_twin.generation_request import GenerationRequest, read_request
from gateway.sampling import OPTIONAL_SAMPLING, SamplingParams
from gateway.triton.inputs import SAMPLING_INPUTS, build_inputs
from tests.build_engines.cpu_twin.doubles import SMALL_CONFIG


def read_back(*, stop_ids: tuple[int, ...] = ()) -> GenerationRequest:
    inputs = build_inputs([1, 45, 96], SamplingParams(max_tokens=4), 2, stop_ids)
    arrays: dict[str, npt.NDArray[np.generic]] = {
        tensor.name(): np.frombuffer(tensor._get_content(), _dtype(tensor.datatype())).reshape(
            tensor.shape()
        )
        for tensor in inputs
    }
    request = read_request(arrays.get, "r", SMALL_CONFIG)
    assert isinstance(request, GenerationRequest)
    return request


def _dtype(datatype: str) -> type[np.generic]:
    return {"INT32": np.int32, "FP32": np.float32, "UINT64": np.uint64, "BOOL": np.bool_}[datatype]


def test_further_end_of_turn_ids_are_sent_as_one_token_stop_words() -> None:
    request = read_back(stop_ids=(7, 9))
    assert request.end_id == 2
    assert request.stop_words == ((7,), (9,))


def test_without_further_end_ids_no_stop_words_are_sent() -> None:
    assert read_back().stop_words == ()


def test_every_optional_sampling_option_names_the_input_carrying_it() -> None:
    assert set(SAMPLING_INPUTS) == set(OPTIONAL_SAMPLING)
