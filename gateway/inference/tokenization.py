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

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


class ChatTemplateError(ValueError):
    pass


class ModelTokenizer:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        # User text that spells `</s>` or `<s>` must stay text, never become control ids.
        self._tokenizer.encode_special_tokens = True
        self.bos_id = self._required_id("<s>")
        self.eos_id = self._required_id("</s>")
        self._held = held_token_ids(tokenizer)

    @classmethod
    def from_directory(cls, directory: Path) -> ModelTokenizer:
        return cls(Tokenizer.from_file(str(directory / "tokenizer.json")))

    def _required_id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no {token} token")
        return int(token_id)

    def encode_raw(self, text: str) -> list[int]:
        """The prompt as the model sees it: `<s>` then the text, no template."""
        return [self.bos_id, *self._encode(text)]

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Llama-2's chat format, turn by turn as Meta's reference `chat_completion` does.

        Each [INST] turn is encoded on its own between `<s>` and `</s>` ids, so text that
        looks like a special token inside a message stays text.
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
        ids: list[int] = []
        for user, assistant in zip(turns[0::2], turns[1::2], strict=False):
            ids += [
                self.bos_id,
                *self._encode(
                    f"{B_INST} {user.content.strip()} {E_INST} {assistant.content.strip()} "
                ),
                self.eos_id,
            ]
        ids += [self.bos_id, *self._encode(f"{B_INST} {turns[-1].content.strip()} {E_INST}")]
        return ids

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

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
