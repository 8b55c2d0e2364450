"""An embeddings request before the backend: the model's tokenizer as its library applies it,
the checks on its inputs, and how its sequences are batched for Triton."""

from __future__ import annotations

import pytest

from build_engines import minilm
from gateway.errors import ApiError
from gateway.inference.embedding_inputs import (
    EmbeddingBounds,
    check_inputs,
    checked_sequences,
    token_id_sequences,
)
from gateway.inference.embeddings import EmbeddingRequest, EmbeddingTokenizer, batches

BOUNDS = EmbeddingBounds(max_inputs=3, max_tokens=40, max_characters=100)
CLS, SEP = 101, 102


@pytest.fixture(scope="module")
def tokenizer() -> EmbeddingTokenizer:
    return EmbeddingTokenizer.from_directory(minilm.model_folder(weights=False))


def test_a_text_gets_the_special_tokens_around_it_and_no_padding(
    tokenizer: EmbeddingTokenizer,
) -> None:
    """The shipped tokenizer.json pads every input to 128 tokens: turned off."""
    assert (tokenizer.prefix, tokenizer.suffix) == ((CLS,), (SEP,))
    assert tokenizer.encode(["hello world", "x"]) == [[CLS, 7592, 2088, SEP], [CLS, 1060, SEP]]


def test_a_special_token_spelled_in_a_text_stays_text(tokenizer: EmbeddingTokenizer) -> None:
    [ids] = tokenizer.encode(["[SEP]"])
    assert ids[0] == CLS
    assert ids[-1] == SEP
    assert SEP not in ids[1:-1]


def test_a_cut_sequence_keeps_its_end_token(tokenizer: EmbeddingTokenizer) -> None:
    assert tokenizer.truncated([CLS, 5, 6, 7, SEP], 4) == [CLS, 5, 6, SEP]


def test_a_length_bound_is_never_more_than_the_tokens(tokenizer: EmbeddingTokenizer) -> None:
    for text in ("word " * 50, "antidisestablishmentarianism", "東京", "🚀" * 9):
        assert tokenizer.min_tokens(text) <= len(tokenizer.encode([text])[0])


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (EmbeddingRequest("text", texts=()), "'text' is empty"),
        (EmbeddingRequest("text", texts=("a",) * 4), "4 inputs, over the limit of 3"),
        (EmbeddingRequest("text", texts=("a", "")), "text[1] is an empty string"),
        (EmbeddingRequest("input", token_ids=((), (1,))), "input[0] is an empty list"),
        (EmbeddingRequest("text", texts=("a" * 101,)), "101 characters of input"),
    ],
)
def test_inputs_out_of_bounds_are_refused_by_name(
    request_: EmbeddingRequest, fragment: str
) -> None:
    with pytest.raises(ApiError) as refused:
        check_inputs(request_, BOUNDS)
    assert refused.value.status_code == 400
    assert fragment in refused.value.message


def test_token_ids_are_wrapped_checked_and_cut_when_asked(tokenizer: EmbeddingTokenizer) -> None:
    plain = EmbeddingRequest("input", token_ids=((5, 6, 7),))
    assert token_id_sequences(plain, tokenizer, 8) == [[CLS, 5, 6, 7, SEP]]
    cut = EmbeddingRequest("input", token_ids=((5, 6, 7),), truncate=True)
    assert token_id_sequences(cut, tokenizer, 4) == [[CLS, 5, 6, SEP]]
    with pytest.raises(ApiError, match=r"input\[0\] is 5 tokens"):
        token_id_sequences(plain, tokenizer, 4)


def test_the_request_token_budget_counts_every_input() -> None:
    request = EmbeddingRequest("text", texts=("a", "b"))
    with pytest.raises(ApiError, match="41 tokens of input, over the limit of 40"):
        checked_sequences(request, [[1] * 21, [1] * 20], None, 512, BOUNDS)  # type: ignore[arg-type]


def test_sequences_are_batched_by_padded_length_in_the_models_batch_size() -> None:
    lengths = [3, 20, 5, 16, 17, 4]
    sequences = [[1] * n for n in lengths]
    assert batches(sequences, (16, 32, 512), 2) == [
        ([0, 2], 16), ([3, 5], 16), ([1, 4], 32),
    ]  # fmt: skip
