"""Incremental detokenization: streamed pieces join to the whole text."""

from __future__ import annotations

import pytest

from build_engines.text_models.detokenize import IncrementalDetokenizer
from build_engines.text_models.tokenizer import TextTokenizer

MULTILINGUAL = "Grüße, 東京 🚀 and the sea"


def pieces(tokenizer: TextTokenizer, ids: list[int]) -> list[str]:
    detokenizer = IncrementalDetokenizer(tokenizer)
    return [detokenizer.add([token]) for token in ids] + [detokenizer.flush()]


def generated_ids(tokenizer: TextTokenizer, text: str) -> list[int]:
    return tokenizer.encode_word(text)


def byte_token(tokenizer: TextTokenizer, byte: int) -> int:
    token_id = tokenizer.tokenizer.token_to_id(f"<0x{byte:02X}>")
    assert token_id is not None
    return int(token_id)


@pytest.mark.parametrize("text", [MULTILINGUAL, "Once upon a time, there was a ship."])
def test_pieces_join_to_the_decoded_text(tokenizer: TextTokenizer, text: str) -> None:
    ids = generated_ids(tokenizer, text)
    assert "".join(pieces(tokenizer, ids)) == tokenizer.decode(ids) == text


def test_no_piece_holds_a_broken_character(tokenizer: TextTokenizer) -> None:
    assert not [
        piece
        for piece in pieces(tokenizer, generated_ids(tokenizer, MULTILINGUAL))
        if "\ufffd" in piece
    ]


def test_an_emoji_spelled_in_four_byte_tokens_comes_out_as_one_piece(
    tokenizer: TextTokenizer,
) -> None:
    assert "🚀" in pieces(tokenizer, generated_ids(tokenizer, "a 🚀"))


def test_word_boundary_spaces_stay_with_the_next_word(tokenizer: TextTokenizer) -> None:
    streamed = pieces(tokenizer, generated_ids(tokenizer, "hello world"))
    assert any(piece.startswith(" ") for piece in streamed)


def test_flush_gives_a_character_cut_off_by_the_length_limit(tokenizer: TextTokenizer) -> None:
    cut = generated_ids(tokenizer, "ok 🚀")[:-2]
    streamed = pieces(tokenizer, cut)
    assert streamed[-1] == "\ufffd\ufffd"
    assert "".join(streamed) == tokenizer.decode(cut)


def test_special_tokens_are_skipped(tokenizer: TextTokenizer) -> None:
    ids = [*generated_ids(tokenizer, "the end"), tokenizer.end_id]
    assert "".join(pieces(tokenizer, ids)) == "the end"


def test_an_invalid_byte_run_streams_exactly_as_decode(tokenizer: TextTokenizer) -> None:
    """0xCB 0xA4 is 'ˤ'; a following continuation byte makes the run invalid UTF-8."""
    byte_ids = [byte_token(tokenizer, byte) for byte in b"\xcb\xa4\x80"]
    ids = [*generated_ids(tokenizer, "a"), *byte_ids]
    ids += generated_ids(tokenizer, " and more")
    assert "".join(pieces(tokenizer, ids)) == tokenizer.decode(ids)
