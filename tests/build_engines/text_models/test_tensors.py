"""TensorRT-LLM's tensor layouts as the text path builds and reads them."""

from __future__ import annotations

import numpy as np

from build_engines.text_models.tensors import beam_tokens, padded_ids, texts, words_list


def test_words_list_puts_tokens_back_to_back_over_end_offsets_padded_with_minus_one() -> None:
    tensor = words_list([[[5, 6], [7]]])
    assert tensor.tolist() == [[[5, 6, 7], [2, 3, -1]]]


def test_words_list_pads_each_batch_item_to_the_widest() -> None:
    tensor = words_list([[[5, 6, 7]], [[8]]])
    assert tensor.tolist() == [[[5, 6, 7], [3, -1, -1]], [[8, 0, 0], [1, -1, -1]]]


def test_words_list_without_words_is_empty_along_its_last_axis() -> None:
    assert words_list([[], []]).shape == (2, 2, 0)


def test_padded_ids_pad_shorter_prompts_on_the_right() -> None:
    assert padded_ids([[1, 2, 3], [1]], pad_id=2).tolist() == [[1, 2, 3], [1, 2, 2]]


def test_beam_tokens_cut_the_first_beam_at_its_sequence_length() -> None:
    output_ids = np.array([[[4, 5, 2, 2], [9, 9, 9, 9]]], np.int32)
    assert beam_tokens(output_ids, np.array([[2, 4]], np.int32)) == [4, 5]


def test_beam_tokens_read_a_cumulative_streaming_length_as_all_tokens() -> None:
    assert beam_tokens(np.array([[[42]]], np.int32), np.array([[7]], np.int32)) == [42]


def test_texts_decode_utf8_bytes() -> None:
    assert texts(np.array([["Grüße".encode()]], dtype=np.object_)) == ["Grüße"]
