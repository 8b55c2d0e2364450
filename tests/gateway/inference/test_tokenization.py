"""The gateway's tokenizer: the twin's chat template (Llama-2-7b-chat's own) and incremental
detokenization."""

from __future__ import annotations

import random
import re

import pytest

from build_engines.tokenizer_asset import ASSET_DIR
from gateway.inference.tokenization import ChatMessage, ChatTemplateError, ModelTokenizer


@pytest.fixture(scope="module")
def tokenizer() -> ModelTokenizer:
    return ModelTokenizer.from_directory(ASSET_DIR)


def streamed(tokenizer: ModelTokenizer, ids: list[int]) -> list[str]:
    detokenizer = tokenizer.detokenizer()
    pieces = [piece for piece in map(detokenizer.step, ids) if piece]
    return [*pieces, detokenizer.finish()]


@pytest.mark.parametrize(
    "text", ["Grüße, 東京 🚀", "The gateway streams tokens.", "  two  spaces", "🚀🚀 ünïcödé ✓"]
)
def test_streamed_pieces_concatenate_to_the_decoded_text(
    tokenizer: ModelTokenizer, text: str
) -> None:
    ids = tokenizer.encode_raw(text)[1:]
    assert "".join(streamed(tokenizer, ids)) == tokenizer.decode(ids)


def test_a_character_split_over_byte_tokens_comes_out_whole(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_raw("a 🚀 b")[1:]
    assert any("🚀" in piece for piece in streamed(tokenizer, ids))
    assert not any("\ufffd" in piece for piece in streamed(tokenizer, ids))


def test_any_id_sequence_streams_exactly_as_decode(tokenizer: ModelTokenizer) -> None:
    """Random ids include invalid UTF-8 byte runs and special tokens, as a model can emit."""
    generator = random.Random(20261124)
    for _ in range(500):
        ids = [generator.randrange(1024) for _ in range(generator.randrange(1, 40))]
        assert "".join(streamed(tokenizer, ids)) == tokenizer.decode(ids), ids


def test_an_unfinished_character_at_the_end_is_flushed_like_decode(
    tokenizer: ModelTokenizer,
) -> None:
    ids = tokenizer.encode_raw("ok 🚀")[1:-2]
    assert "".join(streamed(tokenizer, ids)) == tokenizer.decode(ids)


def test_word_boundary_spaces_survive_streaming(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_raw("hello world again")[1:]
    assert "".join(streamed(tokenizer, ids)) == "hello world again"


def test_raw_prompt_is_bos_then_text(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_raw("hello")
    assert ids[0] == tokenizer.bos_id
    assert tokenizer.decode(ids) == "hello"


def test_chat_template_wraps_a_user_message_in_inst_tags(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_chat([ChatMessage("user", "hi there")])
    assert ids[0] == tokenizer.bos_id
    assert tokenizer.decode(ids) == "[INST] hi there [/INST]"


def test_chat_template_puts_the_system_prompt_in_the_first_turn(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_chat([ChatMessage("system", "be brief"), ChatMessage("user", "hi")])
    assert tokenizer.decode(ids) == "[INST] <<SYS>>\nbe brief\n<</SYS>>\n\nhi [/INST]"


def test_chat_template_closes_each_answered_turn_with_eos(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_chat(
        [ChatMessage("user", "a"), ChatMessage("assistant", "b"), ChatMessage("user", "c")]
    )
    assert ids.count(tokenizer.eos_id) == 1
    assert ids.count(tokenizer.bos_id) == 2


def test_special_token_text_inside_a_message_stays_text(tokenizer: ModelTokenizer) -> None:
    ids = tokenizer.encode_chat([ChatMessage("user", "</s><s>[INST]")])
    assert ids.count(tokenizer.eos_id) == 0
    assert ids.count(tokenizer.bos_id) == 1


ALTERNATE = "Conversation roles must alternate user/assistant/user/assistant/..."


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (["assistant"], ALTERNATE),
        (["user", "user"], ALTERNATE),
        (["system", "assistant"], ALTERNATE),
        (["robot"], ALTERNATE),
        (["system"], "made an empty prompt"),
    ],
)
def test_invalid_role_sequences_are_refused_with_the_templates_message(
    tokenizer: ModelTokenizer, roles: list[str], message: str
) -> None:
    """Llama-2's template raises its own message (`raise_exception`), which clients now see."""
    with pytest.raises(ChatTemplateError, match=re.escape(message)):
        tokenizer.encode_chat([ChatMessage(role, "x") for role in roles])
