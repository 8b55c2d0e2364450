"""Token ids to text as they stream: pieces that join to exactly what decoding them all gives.

The gateway detokenizes every streamed answer with it, and the text path's BLS model (a copy
of this package beside it in the model repository) does the same inside Triton.
"""

from __future__ import annotations

from tokenizers import Tokenizer

REPLACEMENT = "\ufffd"


class StreamingDecoder:
    """Text pieces as token ids arrive; the pieces join to exactly `decode(all ids)`.

    A decoder is local except where bytes are joined into characters: Llama's byte-fallback
    tokens (`<0xF0>`…), and every token of a byte-level BPE (GPT-2's, SmolLM2's), whose
    tokens are byte strings that may end inside a character. The tokenizer decodes the
    joined bytes, one U+FFFD per invalid or unfinished byte sequence. Special tokens decode to
    nothing. So text is decoded over a window: from an anchor token (the last one that ended
    on a character boundary, its own text already sent) to the newest token, and the piece
    is what the window adds beyond the characters already sent.

    A window whose text ends with U+FFFD may end inside a character that the next token
    completes: that last character is held back (the rest is sent, since bytes before a
    character's first byte decode the same whatever follows) and the anchor stays, so the
    next window decodes the character whole. `finish` sends what is held, as `decode` does.
    Per token that is two decodes of a few ids; held tokens (byte-fallback, special) cost
    none until a plain token arrives. Invalid bytes can keep a window ending with U+FFFD for
    ever (a model repeating the first half of an emoji): past `MAX_WINDOW` tokens the anchor
    moves to the newest token as soon as the window's text is the text before it plus its
    own (nothing earlier changes how it decodes), so windows stay short. (`tokenizers`'
    DecodeStream raises "Invalid prefix" on some invalid byte runs, e.g. `<0xCB><0xA4><0x80>`,
    and keeps a held run whole however long it grows.)
    """

    MAX_WINDOW = 8

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        skip_special_tokens: bool = True,
        held: frozenset[int] | None = None,
    ) -> None:
        """`held`: `held_token_ids(tokenizer)`, computed once by callers that make many."""
        self._tokenizer = tokenizer
        self._skip_special_tokens = skip_special_tokens
        self._held = held_token_ids(tokenizer) if held is None else held
        self.ids: list[int] = []
        self._window_start = 0
        self._sent = 0
        """Characters of the window's text already sent (or the anchor's own text)."""
        self._unsent = False

    def step(self, token_id: int) -> str:
        self.ids.append(token_id)
        self._unsent = True
        if token_id in self._held:
            return ""
        window = self._decode(self.ids[self._window_start :])
        if not window.endswith(REPLACEMENT):
            piece = window[self._sent :]
            self._anchor(len(self.ids) - 1)
            return piece
        piece = window[self._sent : len(window) - 1]
        self._sent += len(piece)
        if len(self.ids) - self._window_start > self.MAX_WINDOW:
            self._shorten(window)
        return piece

    def finish(self) -> str:
        """What is still held: a cut-off character's U+FFFD, or tokens after the last piece."""
        if not self._unsent:
            return ""
        window = self._decode(self.ids[self._window_start :])
        piece = window[self._sent :]
        self._sent = len(window)
        self._unsent = False
        return piece

    def _anchor(self, index: int) -> None:
        self._window_start = index
        self._sent = len(self._decode(self.ids[index : index + 1]))
        self._unsent = False

    def _shorten(self, window: str) -> None:
        """Anchor at the newest token if nothing before it can change how it decodes."""
        newest = len(self.ids) - 1
        before = self._decode(self.ids[self._window_start : newest])
        last = self._decode(self.ids[newest:])
        if before + last == window and self._sent >= len(before):
            self._window_start = newest
            self._sent -= len(before)

    def _decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=self._skip_special_tokens)
        return text


def held_token_ids(tokenizer: Tokenizer) -> frozenset[int]:
    """Byte-fallback and special tokens: their text depends on the tokens around them.

    Looked up rather than found by scanning the vocabulary: the BLS model makes a decoder per
    request, and a 49k-token vocabulary takes tens of milliseconds to list.
    """
    special = (
        token_id
        for token_id, added in tokenizer.get_added_tokens_decoder().items()
        if added.special
    )
    byte_tokens = (
        tokenizer.token_to_id(spelling)
        for byte in range(256)
        for spelling in (f"<0x{byte:02X}>", f"<0x{byte:02x}>")
    )
    return frozenset(int(token_id) for token_id in (*special, *byte_tokens) if token_id is not None)
