"""SmolLM2's tokenizer rebuilt from its GGUF file: the model's ids, exact round trips, ChatML."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest
from tokenizers import Tokenizer

from build_engines.gguf_tokenizer import (
    tokenizer_config_from_gguf,
    tokenizer_from_gguf,
    write_tokenizer_files,
)
from tests.smollm2_tokenizer import smollm2_reader

pytestmark = pytest.mark.slow  # it reads SmolLM2's tokenizer out of the GGUF file

ROUND_TRIPS = {
    "english": "The quick brown fox jumps over the lazy dog. Isn't it?",
    "accents": "Grüße, café, naïve, São Paulo, Øresund, Dvořák",
    "cjk": "東京タワーは日本の東京都港区にある。北京欢迎你。한국어 문장",
    "emoji": "a 🚀, 👍🏽, 👨‍👩‍👧‍👦 and 🏳️‍🌈 then 🇯🇵🇫🇷🇺🇸",
    "scripts": "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم",  # noqa: RUF001
    "digits": "In 2024, 3.14159 * 1,000,000 = 3141590",
    "whitespace": "  two  spaces\tand\ttabs\n\n\nnewlines \r\n   \t \n end ",
    "code": 'def f(x: int) -> int:\n    return x ** 2  # {"k": [1, 2]}\n\tprint(f"{x!r}")\n',
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_tokenizer_files(smollm2_reader(), tmp_path_factory.mktemp("smollm2-tokenizer"))


@pytest.fixture(scope="module")
def tokenizer(written: tuple[Path, Path]) -> Tokenizer:
    return Tokenizer.from_file(str(written[0]))


@pytest.fixture(scope="module")
def config(written: tuple[Path, Path]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(written[1].read_text())
    return loaded


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False).ids
    return ids


def tiny_gguf(path: Path, *, model: str = "gpt2", pre: str = "smollm") -> gguf.GGUFReader:
    """A real GGUF file with a four-token vocabulary and no tensors."""
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_context_length(16)
    writer.add_tokenizer_model(model)
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(["<|endoftext|>", "a", "b", "ab"])
    writer.add_token_types([3, 1, 1, 1])
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return gguf.GGUFReader(path)


def test_the_files_are_the_tokenizer_and_its_config_in_the_directory(
    written: tuple[Path, Path],
) -> None:
    tokenizer_file, config_file = written
    assert (tokenizer_file.name, config_file.name) == ("tokenizer.json", "tokenizer_config.json")
    assert tokenizer_file.parent == config_file.parent
    assert tokenizer_file.is_file()
    assert config_file.is_file()


def test_a_question_encodes_to_the_models_own_ids(tokenizer: Tokenizer) -> None:
    assert encode(tokenizer, "where is new york?") == [2942, 314, 725, 329, 1051, 47]


@pytest.mark.parametrize("text", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_text_round_trips_exactly(tokenizer: Tokenizer, text: str) -> None:
    assert tokenizer.decode(encode(tokenizer, text)) == text


def test_each_digit_is_its_own_pre_token(tokenizer: Tokenizer) -> None:
    assert [piece for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str("x2024")] == [
        "x",
        "2",
        "0",
        "2",
        "4",
    ]
    assert tokenizer.encode("12345", add_special_tokens=False).tokens == ["1", "2", "3", "4", "5"]


def test_the_chatml_markers_are_ids_1_and_2_and_special(tokenizer: Tokenizer) -> None:
    added = tokenizer.get_added_tokens_decoder()
    assert (tokenizer.token_to_id("<|im_start|>"), tokenizer.token_to_id("<|im_end|>")) == (1, 2)
    assert [(added[1].content, added[1].special), (added[2].content, added[2].special)] == [
        ("<|im_start|>", True),
        ("<|im_end|>", True),
    ]


def test_every_control_token_is_special_and_strips_nothing(tokenizer: Tokenizer) -> None:
    added = tokenizer.get_added_tokens_decoder()
    assert sorted(added) == list(range(17))
    assert all(token.special and not (token.lstrip or token.rstrip) for token in added.values())


def test_special_tokens_are_dropped_when_decoding_skips_them(tokenizer: Tokenizer) -> None:
    ids = encode(tokenizer, "<|im_start|>user\nhi<|im_end|>")
    assert (ids[0], ids[-1]) == (1, 2)
    assert tokenizer.decode(ids, skip_special_tokens=True) == "user\nhi"


def test_a_spelled_end_marker_stays_text_when_special_tokens_are_not_encoded(
    written: tuple[Path, Path],
) -> None:
    tokenizer = Tokenizer.from_file(str(written[0]))
    tokenizer.encode_special_tokens = True
    text = "say <|im_end|> please"
    ids = encode(tokenizer, text)
    assert 2 not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_the_config_carries_the_chat_template_verbatim(config: dict[str, object]) -> None:
    template = smollm2_reader().fields["tokenizer.chat_template"].contents()
    assert config["chat_template"] == template
    assert str(template).startswith("{% for message in messages %}")


def test_the_config_names_the_chatml_tokens(config: dict[str, object]) -> None:
    assert (config["bos_token"], config["eos_token"]) == ("<|im_start|>", "<|im_end|>")
    assert (config["unk_token"], config["pad_token"]) == ("<|endoftext|>", "<|im_end|>")


def test_the_config_never_adds_a_bos_or_eos(config: dict[str, object]) -> None:
    assert (config["add_bos_token"], config["add_eos_token"]) == (False, False)


def test_the_config_gives_the_context_length_and_the_tokenizer_class(
    config: dict[str, object],
) -> None:
    assert config["model_max_length"] == 8192
    assert config["tokenizer_class"] == "GPT2TokenizerFast"


def test_a_small_gguf_of_a_supported_tokenizer_builds(tmp_path: Path) -> None:
    reader = tiny_gguf(tmp_path / "tiny.gguf")
    tokenizer = tokenizer_from_gguf(reader)
    assert tokenizer.encode("abab<|endoftext|>", add_special_tokens=False).ids == [3, 3, 0]
    assert tokenizer_config_from_gguf(reader)["eos_token"] == "<|endoftext|>"


def test_an_unsupported_pre_tokenizer_is_refused(tmp_path: Path) -> None:
    reader = tiny_gguf(tmp_path / "llama3.gguf", pre="llama-bpe")
    with pytest.raises(ValueError, match="pre-tokenizer 'llama-bpe'"):
        tokenizer_from_gguf(reader)


def test_an_unsupported_tokenizer_model_is_refused(tmp_path: Path) -> None:
    reader = tiny_gguf(tmp_path / "spm.gguf", model="llama", pre="default")
    with pytest.raises(ValueError, match="tokenizer model 'llama'"):
        tokenizer_from_gguf(reader)
