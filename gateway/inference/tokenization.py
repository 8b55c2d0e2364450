"""Text ↔ token ids with the model's own tokenizer, and prompts in the model's own chat format.

The gateway tokenizes itself (rather than sending text to Triton) so it can enforce the
limits before the backend sees a request and bill exact token counts. What a prompt looks
like comes from the model's files, as Hugging Face's tokenizers read them:
`tokenizer_config.json` (`chat_template`, `bos_token`, `eos_token`, `add_bos_token`), or a
`chat_template.jinja` beside it, and `generation_config.json` (`eos_token_id`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from gateway.inference.chat_template import (
    ChatMessage,
    ChatTemplate,
    ChatTemplateError,
    SpecialTokens,
)
from gateway.inference.token_bound import longest_token_chars
from llm_contract.model_repository import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE
from llm_contract.streaming_decoder import StreamingDecoder, held_token_ids

__all__ = ["ChatMessage", "ChatTemplateError", "ModelTokenizer", "Prompt", "TokenizerConfig"]

CHAT_TEMPLATE_FILE = "chat_template.jinja"
GENERATION_CONFIG_FILE = "generation_config.json"
NAMED_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token")
NO_CHAT_TEMPLATE = (
    "this model has no chat template: send a 'prompt' with 'raw': true, written in the "
    "model's own prompt format"
)


@dataclass(frozen=True)
class Prompt:
    """A prompt before tokenizing: control ids and texts in order, cheap to build and measure."""

    pieces: tuple[int | str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(piece for piece in self.pieces if isinstance(piece, str))

    @property
    def text_length(self) -> int:
        return sum(len(text) for text in self.texts)


@dataclass(frozen=True)
class TokenizerConfig:
    """What a model's tokenizer and generation configs say about its prompts."""

    chat_template: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    unk_token: str | None = None
    pad_token: str | None = None
    add_bos_token: bool = False
    """Whether a prompt starts with `bos_token` (Hugging Face's Llama tokenizer: yes)."""
    eos_token_ids: tuple[int, ...] = ()
    """`generation_config.json`'s `eos_token_id`: every id that ends the model's turn."""

    @classmethod
    def read(cls, directory: Path) -> TokenizerConfig:
        """The configs in `directory`; a missing file leaves its fields at their defaults."""
        document = _json_object(directory / TOKENIZER_CONFIG_FILE)
        template_file = directory / CHAT_TEMPLATE_FILE
        if template_file.is_file():
            chat_template: str | None = template_file.read_text()
        else:
            chat_template = _default_template(document.get("chat_template"))
        add_bos_token = document.get("add_bos_token", False)
        if not isinstance(add_bos_token, bool):
            raise ValueError(f"{TOKENIZER_CONFIG_FILE}: add_bos_token is not true or false")
        return cls(
            chat_template=chat_template,
            add_bos_token=add_bos_token,
            eos_token_ids=_eos_token_ids(_json_object(directory / GENERATION_CONFIG_FILE)),
            **{name: _token_text(document.get(name), name) for name in NAMED_TOKENS},
        )

    @property
    def named_tokens(self) -> dict[str, str]:
        """The special tokens a chat template sees by name, those the config sets."""
        named = {name: getattr(self, name) for name in NAMED_TOKENS}
        return {name: token for name, token in named.items() if token is not None}


class ModelTokenizer:
    def __init__(self, tokenizer: Tokenizer, config: TokenizerConfig | None = None) -> None:
        """`InvalidChatTemplate` if the config's chat template does not compile; `ValueError`
        if the config names tokens the tokenizer does not have."""
        config = config or TokenizerConfig()
        self._tokenizer = tokenizer
        # User text that spells a special token must stay text, never become a control id.
        self._tokenizer.encode_special_tokens = True
        named = config.named_tokens
        special_ids = {
            added.content: int(token_id)
            for token_id, added in tokenizer.get_added_tokens_decoder().items()
            if added.special
        }
        for name, token in named.items():
            special_ids[token] = self._required_id(token, name)
        self.add_bos_token = config.add_bos_token
        self.bos_id = special_ids[named["bos_token"]] if "bos_token" in named else None
        if self.add_bos_token and self.bos_id is None:
            raise ValueError(f"{TOKENIZER_CONFIG_FILE} sets add_bos_token but names no bos_token")
        self.eos_id = self._eos_id(named.get("eos_token"), config.eos_token_ids)
        """The id that ends generation: the backend's `end_id`."""
        self.stop_ids = tuple(
            dict.fromkeys(token_id for token_id in config.eos_token_ids if token_id != self.eos_id)
        )
        """Other ids that end the model's turn (generation_config.json's further eos ids)."""
        self.chat_template = (
            None
            if config.chat_template is None
            else ChatTemplate(config.chat_template, SpecialTokens(special_ids, named))
        )
        self._held = held_token_ids(tokenizer)
        self.longest_token_chars = longest_token_chars(tokenizer)

    @classmethod
    def from_directory(cls, directory: Path, *, chat_template: str | None = None) -> ModelTokenizer:
        """The tokenizer and configs in `directory`; `chat_template` replaces the model's own."""
        config = TokenizerConfig.read(directory)
        if chat_template is not None:
            config = replace(config, chat_template=chat_template)
        return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILE)), config)

    def _required_id(self, token: str, name: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"{TOKENIZER_CONFIG_FILE}'s {name} {token!r} is not in the tokenizer")
        return int(token_id)

    def _eos_id(self, eos_token: str | None, eos_token_ids: tuple[int, ...]) -> int:
        if eos_token is not None:
            return self._required_id(eos_token, "eos_token")
        if eos_token_ids:
            return eos_token_ids[0]
        raise ValueError(
            f"no end token: {TOKENIZER_CONFIG_FILE} names no eos_token and there is no "
            f"{GENERATION_CONFIG_FILE} with an eos_token_id"
        )

    def raw_prompt(self, text: str) -> Prompt:
        """The prompt as the model sees it, no template: BOS (if the model adds one), the text."""
        if self.add_bos_token and self.bos_id is not None:
            return Prompt((self.bos_id, text))
        return Prompt((text,))

    def chat_prompt(self, messages: Sequence[ChatMessage], deadline: float | None = None) -> Prompt:
        """The messages in the model's chat template, ready for the assistant's turn.

        `ChatTemplateError` (the client's fault, 400) if the model has no template, its
        template refuses the messages, or it is still rendering at `deadline`."""
        if self.chat_template is None:
            raise ChatTemplateError(NO_CHAT_TEMPLATE)
        return Prompt(self.chat_template.pieces(messages, deadline))

    def min_tokens(self, prompt: Prompt) -> int:
        """Tokens the prompt has at least, without tokenizing it (see `token_bound`)."""
        if self.longest_token_chars is None:
            return len(prompt.pieces) - len(prompt.texts)
        longest = self.longest_token_chars
        return sum(
            1 if isinstance(piece, int) else -(-len(piece) // longest) for piece in prompt.pieces
        )

    def encode(self, prompt: Prompt) -> list[int]:
        """The prompt's ids. The batch call releases the GIL, so it may run in a thread while
        the event loop goes on (a plain `encode` holds the GIL throughout)."""
        encoded = iter(
            self._tokenizer.encode_batch_fast(list(prompt.texts), add_special_tokens=False)
        )
        ids: list[int] = []
        for piece in prompt.pieces:
            if isinstance(piece, int):
                ids.append(piece)
            else:
                ids += next(encoded).ids
        return ids

    def encode_raw(self, text: str) -> list[int]:
        return self.encode(self.raw_prompt(text))

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.encode(self.chat_prompt(messages))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def detokenizer(self) -> StreamingDecoder:
        """Incremental text for one generation (the same decoder the BLS model uses)."""
        return StreamingDecoder(self._tokenizer, held=self._held)

    @property
    def backend(self) -> Tokenizer:
        return self._tokenizer


def _json_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return document


def _default_template(value: object) -> str | None:
    """`chat_template`: a string, or Hugging Face's list of named templates ("default" used)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        for named in value:
            if isinstance(named, dict) and named.get("name") == "default":
                template = named.get("template")
                if isinstance(template, str):
                    return template
        return None
    raise ValueError(f"{TOKENIZER_CONFIG_FILE}: chat_template is neither a string nor a list")


def _token_text(value: object, name: str) -> str | None:
    """A token as a string, or Hugging Face's AddedToken dict (`{"content": …}`)."""
    if isinstance(value, dict):
        value = value.get("content")
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{TOKENIZER_CONFIG_FILE}: {name} is not a string")


def _eos_token_ids(generation_config: dict[str, Any]) -> tuple[int, ...]:
    value = generation_config.get("eos_token_id")
    values = value if isinstance(value, list) else [] if value is None else [value]
    if not all(isinstance(token_id, int) and not isinstance(token_id, bool) for token_id in values):
        raise ValueError(f"{GENERATION_CONFIG_FILE}: eos_token_id is not an id or a list of ids")
    return tuple(values)
