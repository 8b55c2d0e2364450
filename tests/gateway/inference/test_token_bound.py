"""The prompt-length bound: a prompt is refused by its length only when it cannot fit."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

from build_engines.gguf_tokenizer import write_tokenizer_files
from build_engines.tokenizer_asset import ASSET_DIR, CORPUS_FILE
from gateway.inference.token_bound import longest_token_chars
from gateway.inference.tokenization import ChatMessage, ModelTokenizer
from tests.smollm2_tokenizer import smollm2_reader, smollm2_tokenizer

LONGEST_TWIN_TOKEN = "s per minute"  # '▁' in the vocabulary is a space in the text
SMOLLM2_LONGEST = "\n" + " " * 80  # 'ĊĠĠ…': a newline and 80 spaces, 81 characters


@pytest.fixture(scope="module")
def tokenizer() -> ModelTokenizer:
    return ModelTokenizer.from_directory(ASSET_DIR)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> ModelTokenizer:
    directory = tmp_path_factory.mktemp("smollm2-tokenizer")
    write_tokenizer_files(smollm2_reader(), directory)
    return ModelTokenizer.from_directory(directory)


def asset_document() -> dict[str, object]:
    return json.loads((ASSET_DIR / "tokenizer.json").read_text())  # type: ignore[no-any-return]


def variant(**changes: object) -> Tokenizer:
    """The twin's tokenizer with top-level parts of its JSON replaced."""
    return Tokenizer.from_str(json.dumps({**asset_document(), **changes}))


def random_texts(seed: int, alphabet: list[str], fixed: list[str]) -> list[str]:
    """`fixed`, then 300 texts: half prose, half strings drawn from `alphabet`."""
    generator = random.Random(seed)
    words = CORPUS_FILE.read_text().split()
    texts = list(fixed)
    for _ in range(300):
        if generator.random() < 0.5:
            texts.append(" ".join(generator.choices(words, k=generator.randrange(1, 200))))
        else:
            texts.append("".join(generator.choices(alphabet, k=generator.randrange(1, 200))))
    return texts


def sample_texts() -> list[str]:
    """Prose, the longest tokens back to back, spaces, byte-fallback and unknown characters."""
    alphabet = [*"ab ,.\n\t", "é", "東", "🚀", "\x01", "</s>", "<s>", "[INST]", LONGEST_TWIN_TOKEN]
    return random_texts(
        20261201, alphabet, [LONGEST_TWIN_TOKEN * 40, " " * 300, "🚀" * 100, "\x01" * 50]
    )


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


def smollm2_texts() -> list[str]:
    """Prose, its longest tokens back to back, digits, whitespace, multi-byte and ChatML text."""
    alphabet = [*"ab ,.\n\t0123456789", "é", "東", "🚀", "👨‍👩‍👧", "🇯🇵", "Ж", "\x01", "\x7f"]
    alphabet += ["<|im_start|>", "<|im_end|>", "#" * 80, SMOLLM2_LONGEST, "  ", "   \n"]
    fixed = [SMOLLM2_LONGEST * 40, "#" * 8000, " " * 300, "7" * 100, "🚀" * 100, "\U0010fffd" * 50]
    return random_texts(20261207, alphabet, fixed)


def test_smollm2s_bound_is_its_longest_vocabulary_string(smollm2: ModelTokenizer) -> None:
    vocabulary = smollm2.backend.get_vocab(with_added_tokens=True)
    assert smollm2.longest_token_chars == max(map(len, vocabulary)) == len(SMOLLM2_LONGEST)
    assert smollm2.backend.encode(SMOLLM2_LONGEST, add_special_tokens=False).tokens == [
        "Ċ" + "Ġ" * 80
    ]


def test_no_smollm2_prompt_has_fewer_tokens_than_its_lower_bound(smollm2: ModelTokenizer) -> None:
    for text in smollm2_texts():
        for prompt in (smollm2.raw_prompt(text), smollm2.chat_prompt([ChatMessage("user", text)])):
            assert len(smollm2.encode(prompt)) >= smollm2.min_tokens(prompt), text


def test_smollm2_drops_six_control_characters_which_the_bound_still_counts(
    smollm2: ModelTokenizer,
) -> None:
    """The tolerated gap (see `token_bound`): the vocabulary has no byte for them."""
    dropped = "\x04\x06\x13\x14\x16\x1d"
    assert smollm2.encode(smollm2.raw_prompt(dropped * 10)) == []
    assert smollm2.min_tokens(smollm2.raw_prompt(dropped * 10)) == 1


def byte_level_tokenizer(missing: str = "") -> Tokenizer:
    """One token per byte character, no merges: ByteLevel's alphabet but `missing`'s bytes."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    absent = set("".join(piece for piece, _ in byte_level.pre_tokenize_str(missing)))
    alphabet = sorted(set(pre_tokenizers.ByteLevel.alphabet()) - absent)
    vocabulary = {character: token_id for token_id, character in enumerate(alphabet)}
    tokenizer = Tokenizer(models.BPE(vocabulary, []))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tokenizer


def test_a_byte_level_tokenizer_with_every_byte_has_a_bound() -> None:
    assert longest_token_chars(byte_level_tokenizer()) == 1


@pytest.mark.parametrize("missing", ["a", "é", " ", "\n"])
def test_a_byte_level_tokenizer_that_drops_a_character_has_no_bound(missing: str) -> None:
    tokenizer = byte_level_tokenizer(missing)
    assert tokenizer.encode(missing * 3).ids == []
    assert longest_token_chars(tokenizer) is None


def test_a_byte_level_tokenizer_may_lack_control_characters() -> None:
    assert longest_token_chars(byte_level_tokenizer("\x04\x1d")) == 1


def test_a_split_that_removes_what_it_matches_leaves_no_bound() -> None:
    document = json.loads(smollm2_tokenizer().to_str())
    split = {
        "type": "Split",
        "pattern": {"String": " "},
        "behavior": "Removed",
        "invert": False,
    }
    document["pre_tokenizer"]["pretokenizers"].insert(0, split)
    assert longest_token_chars(Tokenizer.from_str(json.dumps(document))) is None
