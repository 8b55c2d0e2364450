"""The postprocessing model: each response's tokens decoded on their own, as upstream does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from build_engines.text_models.tokenizer import TextTokenizer
from tests.build_engines.text_models.conftest import MakeModel
from tests.python_backend_doubles import FakeRequest


@pytest.fixture
def decode(make_model: MakeModel) -> Any:
    model = make_model("postprocessing")

    def run(tokens: list[int], length: int | None = None) -> str:
        fake = FakeRequest(
            {
                "TOKENS_BATCH": np.array([[tokens]], np.int32),
                "SEQUENCE_LENGTH": np.array(
                    [[len(tokens) if length is None else length]], np.int32
                ),
            }
        )
        (response,) = model.execute([fake])
        (text,) = response.output("OUTPUT").reshape(-1)
        return str(text.decode())

    return run


def test_tokens_decode_to_their_text(decode: Any, tokenizer: TextTokenizer) -> None:
    assert decode(tokenizer.encode_word("Grüße, 東京 🚀")) == "Grüße, 東京 🚀"


def test_tokens_past_the_sequence_length_are_ignored(decode: Any, tokenizer: TextTokenizer) -> None:
    ids = tokenizer.encode_word("hello")
    assert decode([*ids, 400, 401], length=len(ids)) == "hello"


def test_special_tokens_are_skipped(decode: Any, tokenizer: TextTokenizer) -> None:
    assert decode([*tokenizer.encode_prompt("hello"), tokenizer.end_id]) == "hello"


def test_decoding_token_by_token_garbles_split_characters_as_upstream_does(
    decode: Any, tokenizer: TextTokenizer
) -> None:
    """The streaming ensemble's known defect (tensorrtllm_backend #192, #196, #606)."""
    ids = tokenizer.encode_word("Grüße, 東京 🚀")
    streamed = "".join(decode([token]) for token in ids)
    assert "\ufffd" in streamed
    assert streamed != "Grüße, 東京 🚀"
