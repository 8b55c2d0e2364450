"""The embedding twin's NumPy encoder against all-MiniLM-L6-v2's own library: the golden
vectors `make_golden_vectors.py` made with sentence-transformers and transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from build_engines import minilm
from build_engines.embedding_twin.bert import BertEncoder

GOLDEN = json.loads((Path(__file__).parent / "golden_vectors.json").read_text())["texts"]
CLOSE = 0.99999


@pytest.fixture(scope="module")
def encoder() -> BertEncoder:
    return BertEncoder(minilm.read_weights(minilm.model_folder()))


def padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    input_ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
    mask = np.zeros_like(input_ids)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = row
        mask[index, : len(row)] = 1
    return input_ids, mask


def test_the_shipped_tokenizer_without_padding_gives_the_libraries_ids() -> None:
    tokenizer = Tokenizer.from_file(str(minilm.model_folder() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    encoded = tokenizer.encode_batch([text["text"] for text in GOLDEN])
    assert [row.ids for row in encoded] == [text["input_ids"] for text in GOLDEN]


def test_a_padding_heavy_batch_matches_the_golden_vectors_in_both_poolings(
    encoder: BertEncoder,
) -> None:
    input_ids, mask = padded([text["input_ids"] for text in GOLDEN])
    pooled = encoder.encode(input_ids, mask)
    for index, text in enumerate(GOLDEN):
        assert pooled.mean[index] @ np.array(text["mean"]) >= CLOSE, text["text"]
        assert pooled.cls[index] @ np.array(text["cls"]) >= CLOSE, text["text"]


def test_a_text_alone_gets_the_vector_it_gets_in_a_padded_batch(encoder: BertEncoder) -> None:
    short = GOLDEN[0]["input_ids"]
    alone = encoder.encode(*padded([short])).mean[0]
    in_batch = encoder.encode(*padded([short, GOLDEN[-1]["input_ids"]])).mean[0]
    assert np.abs(alone - in_batch).max() < 1e-6


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(encoder: BertEncoder) -> None:
    vectors = encoder.encode(*padded([text["input_ids"] for text in GOLDEN[:3]])).mean
    assert vectors[0] @ vectors[1] > 0.7 > 0.1 > vectors[0] @ vectors[2]


def test_vectors_are_unit_length(encoder: BertEncoder) -> None:
    pooled = encoder.encode(*padded([GOLDEN[3]["input_ids"], GOLDEN[4]["input_ids"]]))
    assert np.allclose(np.linalg.norm(pooled.mean, axis=1), 1, atol=1e-6)
    assert np.allclose(np.linalg.norm(pooled.cls, axis=1), 1, atol=1e-6)
