"""A GGUF model's own tokenizer, rebuilt as Hugging Face `tokenizers` files.

A GGUF file carries its tokenizer as metadata: the vocabulary (`tokenizer.ggml.tokens`, the
id is the index), each token's type (`tokenizer.ggml.token_type`, 3 = CONTROL), the BPE merges
and the name of llama.cpp's pre-tokenizer (`tokenizer.ggml.pre`), plus the chat template and
the special ids. llama.cpp knows each pre-tokenizer by name only, so this module builds the
ones it has been checked against and refuses the others rather than guess their regexes:

- `gpt2` / `smollm` (SmolLM2): a byte-level BPE (every byte is a vocabulary character, so no
  unknown token and no byte fallback), no normalizer, each digit its own pre-token, then
  GPT-2's ByteLevel split without a prefix space; the ByteLevel decoder; the CONTROL tokens
  (`<|im_start|>`, `<|im_end|>`…) added as special tokens. Its ids were found identical
  to transformers' GGUF tokenizer on varied text; the tests pin ids and exact round trips.

`write_tokenizer_files` writes `tokenizer.json` and an HF-style `tokenizer_config.json` (chat
template, special tokens, context length) where the text-path models and the gateway read
them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from llm_contract.model_repository import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE

if TYPE_CHECKING:
    import gguf

CONTROL_TOKEN_TYPE = 3
SUPPORTED_PRE_TOKENIZERS = {"gpt2": ("smollm",)}
"""`tokenizer.ggml.model` → the `tokenizer.ggml.pre` values built here."""
SPECIAL_TOKEN_IDS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def tokenizer_from_gguf(reader: gguf.GGUFReader) -> Tokenizer:
    """The model's tokenizer; `ValueError` for a tokenizer model or pre-tokenizer not built here."""
    _check_supported(reader)
    tokens: list[str] = _field(reader, "tokenizer.ggml.tokens")
    token_types: list[int] = _field(reader, "tokenizer.ggml.token_type")
    merges = [_merge_pair(merge) for merge in _field(reader, "tokenizer.ggml.merges")]
    vocabulary = {token: token_id for token_id, token in enumerate(tokens)}
    if len(vocabulary) != len(tokens):
        raise ValueError("the GGUF vocabulary spells some token twice")
    tokenizer = Tokenizer(models.BPE(vocabulary, merges, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = None
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [
            AddedToken(token, special=True, normalized=False, lstrip=False, rstrip=False)
            for token, token_type in zip(tokens, token_types, strict=True)
            if token_type == CONTROL_TOKEN_TYPE
        ]
    )
    return tokenizer


def tokenizer_config_from_gguf(reader: gguf.GGUFReader) -> dict[str, object]:
    """Hugging Face's `tokenizer_config.json` for the tokenizer above.

    A special token whose id the file does not give is left out (not `null`), so readers fall
    back to their defaults. `clean_up_tokenization_spaces` is off: transformers would
    otherwise glue spaces before punctuation when decoding, which the model never does.
    """
    tokens: list[str] = _field(reader, "tokenizer.ggml.tokens")
    config: dict[str, object] = {"tokenizer_class": "GPT2TokenizerFast"}
    if "tokenizer.chat_template" in reader.fields:
        config["chat_template"] = _field(reader, "tokenizer.chat_template")
    for name, key in SPECIAL_TOKEN_IDS.items():
        if key in reader.fields:
            config[name] = tokens[int(_field(reader, key))]
    config["add_bos_token"] = _flag(reader, "tokenizer.ggml.add_bos_token")
    config["add_eos_token"] = _flag(reader, "tokenizer.ggml.add_eos_token")
    context_key = f"{_field(reader, 'general.architecture')}.context_length"
    if context_key in reader.fields:
        config["model_max_length"] = int(_field(reader, context_key))
    config["clean_up_tokenization_spaces"] = False
    return config


def write_tokenizer_files(reader: gguf.GGUFReader, directory: Path) -> tuple[Path, Path]:
    """`tokenizer.json` and `tokenizer_config.json` in `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer_file = directory / TOKENIZER_FILE
    config_file = directory / TOKENIZER_CONFIG_FILE
    tokenizer_file.write_text(tokenizer_from_gguf(reader).to_str() + "\n", encoding="utf-8")
    config = tokenizer_config_from_gguf(reader)
    config_file.write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return tokenizer_file, config_file


def _check_supported(reader: gguf.GGUFReader) -> None:
    model = _field(reader, "tokenizer.ggml.model")
    pre = _field(reader, "tokenizer.ggml.pre") if "tokenizer.ggml.pre" in reader.fields else None
    if model not in SUPPORTED_PRE_TOKENIZERS:
        raise ValueError(
            f"unsupported GGUF tokenizer model {model!r}: only "
            f"{', '.join(map(repr, SUPPORTED_PRE_TOKENIZERS))} can be rebuilt"
        )
    if pre not in SUPPORTED_PRE_TOKENIZERS[model]:
        raise ValueError(
            f"unsupported GGUF pre-tokenizer {pre!r} for tokenizer model {model!r}: only "
            f"{', '.join(map(repr, SUPPORTED_PRE_TOKENIZERS[model]))} can be rebuilt"
        )


def _merge_pair(merge: str) -> tuple[str, str]:
    """`"Ġ t"` → `("Ġ", "t")`: byte-level symbols never hold a space (it is `Ġ`)."""
    left, separator, right = merge.partition(" ")
    if not (separator and left and right) or " " in right:
        raise ValueError(f"malformed GGUF merge {merge!r}")
    return left, right


def _field(reader: gguf.GGUFReader, key: str) -> Any:
    if key not in reader.fields:
        raise ValueError(f"the GGUF file has no {key!r}")
    return reader.fields[key].contents()


def _flag(reader: gguf.GGUFReader, key: str) -> bool:
    return bool(_field(reader, key)) if key in reader.fields else False
