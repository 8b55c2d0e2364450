"""A model's own chat format: the Jinja `chat_template` it ships, rendered as Hugging Face's
`apply_chat_template` renders it, then cut into control ids and text for the tokenizer.

The environment matches transformers' (`chat_template_utils`): an immutable sandbox with
`trim_blocks`, `lstrip_blocks` and loop controls, a `tojson` filter that keeps non-ASCII text
and does not escape HTML, and the `raise_exception` and `strftime_now` globals. A template
sees `messages`, `add_generation_prompt` (always true: the model answers next), `tools` and
`documents` (none) and the tokenizer's named special tokens (`bos_token`, `eos_token`, …).

The rendered text spells special tokens (`<s>`, `<|im_start|>`) as text; `ChatTemplate.pieces`
turns the ones the template wrote into their ids. Text a client sent that spells one stays
text: before rendering, each such spelling in a message (content or role) is swapped for a
random per-render placeholder, and the literal is put back into the text pieces after the
split. (A token the template would form by joining its own text to a message's, say writing
`<|im_` just before the content, is not caught; the templates in use write whole tokens.)
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

Piece = int | str
"""A control id (a special token the template wrote) or text to tokenize."""

PLACEHOLDER_DIGITS = 30
"""Placeholders are digits, so they pass filters such as `trim`, `upper` or `tojson` unchanged
(as Hugging Face's do), drawn anew for each render among 10**30: a client's own text does not
contain one, by chance or by design. (One that did would only come back as a token's spelling:
placeholders are restored into text pieces, after the split, never into control ids.)"""


class ChatTemplateError(ValueError):
    """The template refused these messages, or failed on them: the message is the client's
    answer (400), e.g. the template's own `raise_exception` text."""


class ChatTemplateTimeout(ChatTemplateError):
    """The render passed its deadline: stopped at the template's next output, so an abandoned
    render does not go on using a core."""


class InvalidChatTemplate(ValueError):
    """The template does not compile: a configuration error, found when the model loads."""


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


class SpecialTokens:
    """The tokenizer's special-token strings with their ids, and the named ones a template sees.

    `ids`: every string that is a control token of the model (`<s>`, `<|im_end|>`, …).
    `named`: template variables such as `bos_token`, each one of the strings of `ids`.
    """

    def __init__(self, ids: Mapping[str, int], named: Mapping[str, str]) -> None:
        unknown = sorted(name for name, token in named.items() if token not in ids)
        if unknown:
            raise ValueError(f"named special tokens without an id: {', '.join(unknown)}")
        self.ids = {token: token_id for token, token_id in ids.items() if token}
        self.named = dict(named)
        # Longest first, so that a token that contains another is matched whole.
        longest_first = sorted(self.ids, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, longest_first))) if self.ids else None

    def split(self, text: str) -> list[Piece]:
        """`text` cut at every special-token string: their ids and the non-empty text between."""
        if self._pattern is None:
            return [text] if text else []
        pieces: list[Piece] = []
        start = 0
        for match in self._pattern.finditer(text):
            if match.start() > start:
                pieces.append(text[start : match.start()])
            pieces.append(self.ids[match.group()])
            start = match.end()
        if start < len(text):
            pieces.append(text[start:])
        return pieces

    def hide(self, text: str, placeholders: dict[str, str]) -> str:
        """`text` with every special-token spelling replaced by a placeholder for it, recorded in
        `placeholders` (placeholder → literal). Repeated to a fixpoint, as a replacement could in
        principle join the text around it into a new spelling."""
        pattern = self._pattern
        if pattern is None:
            return text
        by_token = {literal: placeholder for placeholder, literal in placeholders.items()}

        def placeholder(match: re.Match[str]) -> str:
            literal = match.group()
            if literal not in by_token:
                by_token[literal] = _new_placeholder(placeholders)
                placeholders[by_token[literal]] = literal
            return by_token[literal]

        while pattern.search(text):
            text = pattern.sub(placeholder, text)
        return text


class ChatTemplate:
    """A compiled chat template; `InvalidChatTemplate` if it does not compile."""

    def __init__(self, source: str, special_tokens: SpecialTokens) -> None:
        self.source = source
        self.special_tokens = special_tokens
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateError as error:
            line = getattr(error, "lineno", None)
            where = f"line {line}: " if line is not None else ""
            raise InvalidChatTemplate(f"{where}{error.message or error}") from error

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt as text, as `apply_chat_template(…, tokenize=False,
        add_generation_prompt=True)` gives it."""
        return self._render([{"role": m.role, "content": m.content} for m in messages])

    def pieces(
        self, messages: Sequence[ChatMessage], deadline: float | None = None
    ) -> tuple[Piece, ...]:
        """The prompt as control ids and texts: the special tokens the template wrote become
        ids, the ones inside messages stay text. Past `deadline` (`time.monotonic()`), the
        render stops at the template's next output and `ChatTemplateTimeout` is raised."""
        placeholders: dict[str, str] = {}
        hide = self.special_tokens.hide
        hidden = [
            {"role": hide(m.role, placeholders), "content": hide(m.content, placeholders)}
            for m in messages
        ]
        pieces = self.special_tokens.split(self._render(hidden, deadline))
        if not pieces:
            raise ChatTemplateError(
                "the model's chat template made an empty prompt of these messages"
            )
        if not placeholders:
            return tuple(pieces)
        restore = re.compile("|".join(map(re.escape, placeholders)))

        def literal(match: re.Match[str]) -> str:
            return placeholders[match.group()]

        return tuple(
            restore.sub(literal, piece) if isinstance(piece, str) else piece for piece in pieces
        )

    def _render(self, messages: list[dict[str, str]], deadline: float | None = None) -> str:
        try:
            chunks = self._template.generate(
                messages=messages,
                tools=None,
                documents=None,
                add_generation_prompt=True,
                **self.special_tokens.named,
            )
            if deadline is None:
                return "".join(chunks)
            rendered = []
            for chunk in chunks:
                rendered.append(chunk)
                if time.monotonic() > deadline:
                    raise ChatTemplateTimeout(
                        "the model's chat template took too long on these messages"
                    )
            return "".join(rendered)
        except ChatTemplateError:
            raise
        except Exception as error:
            # Whatever the template's code raises (a sandbox refusal, an undefined variable's
            # misuse, a type error) is its verdict on these messages, never a server error.
            raise ChatTemplateError(
                f"the model's chat template failed on these messages: {error}"
            ) from error


def _environment() -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    globals_: dict[str, Callable[..., Any]] = {
        "raise_exception": _raise_exception,
        "strftime_now": _strftime_now,
    }
    environment.globals.update(globals_)
    return environment


def _raise_exception(message: object) -> None:
    raise ChatTemplateError(str(message))


def _strftime_now(date_format: str) -> str:
    return datetime.now().strftime(date_format)


def _tojson(
    value: object,
    ensure_ascii: bool = False,
    indent: int | str | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """Plain JSON: Jinja's own `tojson` escapes `<`, `>`, `&` and `'` for HTML."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _new_placeholder(taken: Mapping[str, str]) -> str:
    while True:
        placeholder = str(secrets.randbelow(10**PLACEHOLDER_DIGITS)).zfill(PLACEHOLDER_DIGITS)
        if placeholder not in taken:
            return placeholder
