"""The engine's tokenizer with Llama-2's conventions, shared by every text-path model.

Prompts get `<s>` from the tokenizer's post-processor (as Hugging Face's Llama tokenizer
adds it); `</s>` ends generation and, Llama having no pad token, also pads (as upstream's
preprocessing does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer

from llm_contract.model_repository import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE

from .settings import SettingsError

LLAMA_EOS = "</s>"


class TextTokenizer:
    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        end_token: str = LLAMA_EOS,
        add_special_tokens: bool = True,
        skip_special_tokens: bool = True,
    ) -> None:
        end_id = tokenizer.token_to_id(end_token)
        if end_id is None:
            raise SettingsError(f"the tokenizer has no end token {end_token!r}")
        self.tokenizer = tokenizer
        self.end_id: int = end_id
        self.pad_id: int = end_id
        self.add_special_tokens = add_special_tokens
        self.skip_special_tokens = skip_special_tokens

    @classmethod
    def from_dir(
        cls, directory: Path, *, add_special_tokens: bool = True, skip_special_tokens: bool = True
    ) -> TextTokenizer:
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            raise SettingsError(f"no {TOKENIZER_FILE} in tokenizer_dir {directory}")
        return cls(
            Tokenizer.from_file(str(path)),
            end_token=_end_token(directory / TOKENIZER_CONFIG_FILE),
            add_special_tokens=add_special_tokens,
            skip_special_tokens=skip_special_tokens,
        )

    def encode_prompt(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=self.add_special_tokens).ids
        return ids

    def encode_word(self, text: str) -> list[int]:
        """A stop or bad word as it appears mid-text: no `<s>` (upstream's choice)."""
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def encode_words(self, words: Iterable[str]) -> list[list[int]]:
        """Each non-empty word's ids; words that encode to nothing are dropped."""
        return [ids for ids in map(self.encode_word, words) if ids]

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self.tokenizer.decode(list(ids), skip_special_tokens=self.skip_special_tokens)
        return text


def _end_token(config_file: Path) -> str:
    """`eos_token` of tokenizer_config.json (a string or Hugging Face's AddedToken dict)."""
    if not config_file.is_file():
        return LLAMA_EOS
    token = json.loads(config_file.read_text()).get("eos_token", LLAMA_EOS)
    if isinstance(token, dict):
        token = token.get("content", LLAMA_EOS)
    return str(token)
