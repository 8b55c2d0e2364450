"""Incremental detokenization with a byte-level BPE (SmolLM2's): a token may hold part of a
character's UTF-8 bytes, yet streamed pieces join to the whole text and none is broken."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tokenizers import Tokenizer

from build_engines.text_models.detokenize import IncrementalDetokenizer
from build_engines.text_models.tokenizer import TextTokenizer
from llm_contract.streaming_decoder import StreamingDecoder
from tests.smollm2_tokenizer import smollm2_tokenizer

TEXTS = {
    "english": "Once upon a time, there was a ship. It sailed on, and on.",
    "japanese": "東京タワーは日本の東京都港区芝公園にある電波塔です。",
    "chinese": "北京是中华人民共和国的首都，也是全国的政治中心。",  # noqa: RUF001
    "emoji_zwj": "family 👨‍👩‍👧‍👦, coder 👩🏽‍💻, rainbow 🏳️‍🌈",
    "flags": "🇯🇵🇫🇷🇺🇸 flags",
    "mixed": "Grüße, 東京 🚀 and Привет 👍🏽! Γειά σου, مرحبا",  # noqa: RUF001
}
LONE_CONTINUATION = "ļ"  # byte 0x9A: never the start of a character


@pytest.fixture(scope="module")
def smollm2() -> TextTokenizer:
    return TextTokenizer(smollm2_tokenizer(), end_token="<|im_end|>")


def pieces(tokenizer: TextTokenizer, ids: list[int]) -> list[str]:
    detokenizer = IncrementalDetokenizer(tokenizer)
    return [detokenizer.add([token]) for token in ids] + [detokenizer.flush()]


def token_id(tokenizer: TextTokenizer, token: str) -> int:
    found = tokenizer.tokenizer.token_to_id(token)
    assert found is not None
    return int(found)


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_pieces_join_to_the_decoded_text(smollm2: TextTokenizer, text: str) -> None:
    ids = smollm2.encode_word(text)
    assert "".join(pieces(smollm2, ids)) == smollm2.decode(ids) == text


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_no_piece_holds_a_broken_character(smollm2: TextTokenizer, text: str) -> None:
    assert not [piece for piece in pieces(smollm2, smollm2.encode_word(text)) if "\ufffd" in piece]


def test_an_emoji_split_over_tokens_comes_out_whole_in_one_piece(smollm2: TextTokenizer) -> None:
    ids = smollm2.encode_word("a 🚀")
    assert smollm2.tokenizer.encode("a 🚀", add_special_tokens=False).tokens == [
        "a",
        "ĠðŁ",
        "ļ",
        "Ģ",
    ]
    assert "🚀" in pieces(smollm2, ids)


def test_flush_gives_a_character_cut_off_by_the_length_limit(smollm2: TextTokenizer) -> None:
    cut = smollm2.encode_word("ok 🚀")[:-1]
    streamed = pieces(smollm2, cut)
    assert streamed[-1] == "\ufffd"
    assert "".join(streamed) == smollm2.decode(cut)


def test_a_lone_continuation_byte_streams_exactly_as_decode(smollm2: TextTokenizer) -> None:
    ids = [
        *smollm2.encode_word("a"),
        token_id(smollm2, LONE_CONTINUATION),
        *smollm2.encode_word(" and 🚀"),
    ]
    assert "\ufffd" in smollm2.decode(ids)
    assert "".join(pieces(smollm2, ids)) == smollm2.decode(ids)


def test_special_tokens_are_skipped(smollm2: TextTokenizer) -> None:
    ids = [*smollm2.encode_word("the end"), smollm2.end_id]
    assert "".join(pieces(smollm2, ids)) == "the end"


def test_any_id_sequence_streams_exactly_as_decode(smollm2: TextTokenizer) -> None:
    """Random ids, many of them single bytes, make invalid UTF-8 as a model can."""
    generator = random.Random(20261207)
    vocabulary = smollm2.tokenizer.get_vocab()
    single_bytes = [token for text, token in vocabulary.items() if len(text) == 1]
    emoji = smollm2.encode_word("🚀👍🏽東")
    for _ in range(300):
        ids = [
            generator.choice((generator.randrange(len(vocabulary)), *single_bytes, *emoji, 2))
            for _ in range(generator.randrange(1, 30))
        ]
        assert "".join(pieces(smollm2, ids)) == smollm2.decode(ids), ids


class DecodeLengths:
    """The tokenizer, recording how many ids each decode is given."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.lengths: list[int] = []

    def decode(self, ids: list[int], **options: Any) -> str:
        self.lengths.append(len(ids))
        text: str = self.tokenizer.decode(ids, **options)
        return text


def test_a_long_invalid_byte_run_is_decoded_a_few_tokens_at_a_time(
    smollm2: TextTokenizer,
) -> None:
    """`ðŁ` is the first two bytes of many emoji: repeated, each breaks the one before."""
    recorder = DecodeLengths(smollm2.tokenizer)
    decoder = StreamingDecoder(recorder, held=frozenset())  # type: ignore[arg-type]
    ids = [token_id(smollm2, "ðŁ")] * 500
    streamed = "".join(decoder.step(token) for token in ids) + decoder.finish()
    assert streamed == smollm2.decode(ids)
    assert max(recorder.lengths) <= StreamingDecoder.MAX_WINDOW + 1
