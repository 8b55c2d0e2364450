"""Text ↔ token ids with the model's own tokenizer, and the Llama-2 chat template.

The gateway tokenizes itself (rather than sending text to Triton) so it can enforce the
limits before the backend sees a request and bill exact token counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from build_engines.text_models.detokenize import StreamingDecoder, held_token_ids
from build_engines.text_models.tokenizer import TOKENIZER_FILE
from gateway.inference.token_bound import longest_token_chars

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


class ChatTemplateError(ValueError):
    pass


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


class ModelTokenizer:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        # User text that spells `</s>` or `<s>` must stay text, never become control ids.
        self._tokenizer.encode_special_tokens = True
        self.bos_id = self._required_id("<s>")
        self.eos_id = self._required_id("</s>")
        self._held = held_token_ids(tokenizer)
        self.longest_token_chars = longest_token_chars(tokenizer)

    @classmethod
    def from_directory(cls, directory: Path) -> ModelTokenizer:
        return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILE)))

    def _required_id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no {token} token")
        return int(token_id)

    def raw_prompt(self, text: str) -> Prompt:
        """The prompt as the model sees it: `<s>` then the text, no template."""
        return Prompt((self.bos_id, text))

    def chat_prompt(self, messages: Sequence[ChatMessage]) -> Prompt:
        """Llama-2's chat format, turn by turn as Meta's reference `chat_completion` does.

        Each [INST] turn is its own text between `<s>` and `</s>` ids, so text that looks
        like a special token inside a message stays text.
        """
        turns = list(messages)
        if turns and turns[0].role == "system":
            if len(turns) < 2:
                raise ChatTemplateError(
                    "messages: a system message must be followed by a user message"
                )
            system, first = turns[0], turns[1]
            turns = [
                ChatMessage("user", f"{B_SYS}{system.content.strip()}{E_SYS}{first.content}"),
                *turns[2:],
            ]
            if first.role != "user":
                raise ChatTemplateError(
                    "messages: the system message must be followed by a user message"
                )
        _check_alternation(turns)
        pieces: list[int | str] = []
        for user, assistant in zip(turns[0::2], turns[1::2], strict=False):
            pieces += [
                self.bos_id,
                f"{B_INST} {user.content.strip()} {E_INST} {assistant.content.strip()} ",
                self.eos_id,
            ]
        pieces += [self.bos_id, f"{B_INST} {turns[-1].content.strip()} {E_INST}"]
        return Prompt(tuple(pieces))

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


def _check_alternation(turns: Sequence[ChatMessage]) -> None:
    if not turns:
        raise ChatTemplateError("messages: at least one user message is required")
    for index, turn in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if turn.role != expected:
            raise ChatTemplateError(
                f"messages[{index}]: expected role '{expected}' (after an optional system "
                f"message, roles alternate user/assistant), got '{turn.role}'"
            )
    if turns[-1].role != "user":
        raise ChatTemplateError("messages: the last message must come from the user")
