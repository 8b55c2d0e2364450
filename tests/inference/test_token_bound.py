"""The prompt-length bound: a prompt is refused by its length only when it cannot fit."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import AddedToken, Tokenizer

from build_engines.tokenizer_asset import ASSET_DIR, CORPUS_FILE
from gateway.inference.token_bound import longest_token_chars
from gateway.inference.tokenization import ChatMessage, ModelTokenizer

LONGEST_TWIN_TOKEN = "s per minute"  # '▁' in the vocabulary is a space in the text


@pytest.fixture(scope="module")
def tokenizer() -> ModelTokenizer:
    return ModelTokenizer.from_directory(ASSET_DIR)


def asset_document() -> dict[str, object]:
    return json.loads((ASSET_DIR / "tokenizer.json").read_text())  # type: ignore[no-any-return]


def variant(**changes: object) -> Tokenizer:
    """The twin's tokenizer with top-level parts of its JSON replaced."""
    return Tokenizer.from_str(json.dumps({**asset_document(), **changes}))


def sample_texts() -> list[str]:
    """Prose, the longest tokens back to back, spaces, byte-fallback and unknown characters."""
    generator = random.Random(20261201)
    words = CORPUS_FILE.read_text().split()
    alphabet = [*"ab ,.\n\t", "é", "東", "🚀", "\x01", "</s>", "<s>", "[INST]", LONGEST_TWIN_TOKEN]
    texts = [LONGEST_TWIN_TOKEN * 40, " " * 300, "🚀" * 100, "\x01" * 50]
    for _ in range(300):
        if generator.random() < 0.5:
            texts.append(" ".join(generator.choices(words, k=generator.randrange(1, 200))))
        else:
            texts.append("".join(generator.choices(alphabet, k=generator.randrange(1, 200))))
    return texts


def test_the_twin_bound_is_its_longest_vocabulary_string(tokenizer: ModelTokenizer) -> None:
    vocabulary = tokenizer.backend.get_vocab(with_added_tokens=True)
    assert tokenizer.longest_token_chars == max(map(len, vocabulary)) == 12


@pytest.mark.parametrize("text", sample_texts())
def test_no_prompt_has_fewer_tokens_than_its_lower_bound(
    tokenizer: ModelTokenizer, text: str
) -> None:
    for prompt in (tokenizer.raw_prompt(text), tokenizer.chat_prompt([ChatMessage("user", text)])):
        assert len(tokenizer.encode(prompt)) >= tokenizer.min_tokens(prompt)


def test_the_bound_is_tight_for_a_text_of_longest_tokens(tokenizer: ModelTokenizer) -> None:
    prompt = tokenizer.raw_prompt(LONGEST_TWIN_TOKEN * 2046)
    assert (tokenizer.min_tokens(prompt), len(tokenizer.encode(prompt))) == (2047, 2048)


def test_a_chat_prompt_bound_counts_its_control_ids(tokenizer: ModelTokenizer) -> None:
    turns = [ChatMessage("user", "a"), ChatMessage("assistant", "b"), ChatMessage("user", "c")]
    prompt = tokenizer.chat_prompt(turns)
    # <s> "[INST] a [/INST] b " </s> <s> "[INST] c [/INST]": 3 ids, 19 and 16 characters.
    assert tokenizer.min_tokens(prompt) == 3 + 2 + 2


@pytest.mark.parametrize(
    "text", ["plain words", "</s><s>[INST] spelt specials", "  two  spaces  ", "Grüße 東京 🚀", ""]
)
def test_a_prompt_encodes_to_the_ids_of_encoding_each_text_alone(
    tokenizer: ModelTokenizer, text: str
) -> None:
    """One batched call for every text of the prompt gives what one `encode` per text does."""
    prompt = tokenizer.chat_prompt(
        [ChatMessage("user", text), ChatMessage("assistant", text), ChatMessage("user", text)]
    )
    expected: list[int] = []
    for piece in prompt.pieces:
        if isinstance(piece, int):
            expected.append(piece)
        else:
            expected += tokenizer.backend.encode(piece, add_special_tokens=False).ids
    assert tokenizer.encode(prompt) == expected


def test_a_tokenizer_that_fuses_unknown_characters_has_no_bound() -> None:
    model = {**asset_document()["model"], "byte_fallback": False}  # type: ignore[dict-item]
    fused = variant(model=model)
    # "\x07" is not in the vocabulary: without byte fallback, 100 of them are one <unk>.
    assert fused.encode("\x07" * 100, add_special_tokens=False).tokens == ["▁", "<unk>"]
    assert longest_token_chars(fused) is None


def test_a_byte_fallback_without_every_byte_token_has_no_bound() -> None:
    document = asset_document()
    vocabulary = dict(document["model"]["vocab"])  # type: ignore[index]
    del vocabulary["<0xE6>"]
    model = {**document["model"], "vocab": vocabulary}  # type: ignore[dict-item]
    assert longest_token_chars(variant(model=model)) is None


@pytest.mark.parametrize(
    "normalizer",
    [
        {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "NFKC"},
        {"type": "Replace", "pattern": {"String": "  "}, "content": " "},
        {"type": "Replace", "pattern": {"Regex": " +"}, "content": " "},
    ],
)
def test_a_normalizer_that_can_shorten_the_text_leaves_no_bound(
    normalizer: dict[str, object],
) -> None:
    assert longest_token_chars(variant(normalizer=normalizer)) is None


def test_a_pre_tokenizer_that_drops_whitespace_leaves_no_bound() -> None:
    assert longest_token_chars(variant(pre_tokenizer={"type": "Whitespace"})) is None


def test_a_metaspace_pre_tokenizer_keeps_the_bound() -> None:
    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    assert longest_token_chars(variant(normalizer=None, pre_tokenizer=metaspace)) == 12


def test_an_added_token_that_strips_whitespace_leaves_no_bound() -> None:
    tokenizer = Tokenizer.from_file(str(ASSET_DIR / "tokenizer.json"))
    tokenizer.add_tokens([AddedToken("<tool>", lstrip=True, normalized=False)])
    # The 100 spaces go into the added token: 3 tokens for 107 characters.
    assert len(tokenizer.encode("x" + " " * 100 + "<tool>", add_special_tokens=False).ids) == 3
    assert longest_token_chars(tokenizer) is None


def test_truncation_leaves_no_bound() -> None:
    tokenizer = Tokenizer.from_file(str(ASSET_DIR / "tokenizer.json"))
    tokenizer.enable_truncation(8)
    assert longest_token_chars(tokenizer) is None
