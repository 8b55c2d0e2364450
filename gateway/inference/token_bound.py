"""How many characters one token can cover at most: a prompt's length then bounds its tokens.

Tokenizing costs about a microsecond per character, so a 1 MB prompt takes a second of CPU
before its token count can be compared with the context length. Dividing the text's length
by the most characters any one token can cover gives, for free, a count of tokens the
prompt has *at least*; a prompt whose lower bound is over the context length cannot fit, and
is refused without being tokenized.

The bound is `len(text) / L` tokens (code points), with `L` the longest string in the
vocabulary, added tokens included. It holds for a BPE tokenizer built like Llama-2's:

- the normalizer and pre-tokenizer only grow the text or keep its length (`Prepend`,
  `Replace` of a string by one at least as long, `Metaspace`), so the model sees at least
  `len(text)` characters;
- every token covers at most `L` of them: a BPE symbol starts as one character (whose
  vocabulary string is that character), a byte-fallback token (`<0xNN>`, six characters
  long) covers part of one character, and a merge of two symbols has the two strings joined,
  so by induction a symbol's string is never shorter than the characters it covers;
- the only token that can cover more than its own string is a fused `<unk>` (a run of
  unknown characters as one token), and with byte fallback over all 256 byte tokens no
  character is unknown; without either, each unknown character must be an `<unk>` of its
  own (a BPE with no `<unk>` token drops it, so it is not counted at all); an added token
  that strips the whitespace around it could cover any amount of it, so there must be none
  among the added tokens user text can match.

The same bound holds for a byte-level BPE built like GPT-2's (SmolLM2's):

- a normalizer as above (SmolLM2 has none), pre-tokenizers that only split (`Digits`, a
  `Split` that keeps what it matches) and `ByteLevel`, which turns each UTF-8 byte of the
  text into one character, so the model sees at least `len(text)` characters (a code point
  is one to four bytes);
- symbols start as single byte characters and merges join strings, so a token covers at most
  as many bytes, hence characters of text, as its string is long;
- no character is dropped whole: the vocabulary has a character for every ASCII byte and
  every continuation byte (each multi-byte character has one), or each unknown byte becomes
  an unfused `<unk>`; added tokens as above. The one tolerated gap: ASCII control
  characters other than tab and line breaks, which a vocabulary may lack and the tokenizer
  then drops, as llama.cpp does (SmolLM2 has no token for U+0004, U+0006, U+0013, U+0014,
  U+0016, U+001D). The bound counts them, so a prompt made almost entirely of them (more
  than `L` times the context length) would be refused although its few tokens fit; no text
  needs them.

A tokenizer outside these conditions (another normalizer, a subword prefix, truncation)
gets no bound (`None`): its prompts are always tokenized in full.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokenizers import Tokenizer, pre_tokenizers

BYTE_TOKENS = tuple(f"<0x{byte:02X}>" for byte in range(256))
CONTINUATION_BYTES = bytes(range(0x80, 0xC0))
DROPPABLE_CONTROLS = bytes(byte for byte in (*range(0x20), 0x7F) if byte not in b"\t\n\r")


def longest_token_chars(tokenizer: Tokenizer) -> int | None:
    """`L` above: no token covers more characters; `None` when that cannot be shown."""
    document = json.loads(tokenizer.to_str())
    vocabulary = tokenizer.get_vocab(with_added_tokens=True)
    if document.get("truncation") is not None:
        return None
    if not (
        _keeps_length(document.get("normalizer")) and _keeps_length(document.get("pre_tokenizer"))
    ):
        return None
    byte_level = _has_byte_level(document.get("normalizer")) or _has_byte_level(
        document.get("pre_tokenizer")
    )
    if not _bpe_tokens_cover_their_string(document["model"], vocabulary, byte_level=byte_level):
        return None
    if any(
        added.get("lstrip") or added.get("rstrip")
        for added in document.get("added_tokens", [])
        if not (added.get("special") and tokenizer.encode_special_tokens)
    ):
        return None
    return max(1, *(len(token) for token in vocabulary))


def _keeps_length(step: Mapping[str, Any] | None) -> bool:
    """A normalizer or pre-tokenizer after which the text has at least as many characters."""
    if step is None:
        return True
    kind = step["type"]
    if kind == "Sequence":
        parts = step.get("normalizers", step.get("pretokenizers", []))
        return all(_keeps_length(part) for part in parts)
    if kind in ("Prepend", "Metaspace", "Digits", "ByteLevel"):
        return True
    if kind == "Split":
        return bool(step.get("behavior") != "Removed")
    if kind == "Replace":
        pattern = step["pattern"].get("String")
        return pattern is not None and len(step["content"]) >= len(pattern)
    return False


def _has_byte_level(step: Mapping[str, Any] | None) -> bool:
    if step is None:
        return False
    parts = step.get("normalizers", step.get("pretokenizers"))
    if step["type"] == "Sequence" and parts is not None:
        return any(_has_byte_level(part) for part in parts)
    return bool(step["type"] == "ByteLevel")


def _bpe_tokens_cover_their_string(
    model: Mapping[str, Any], vocabulary: Mapping[str, int], *, byte_level: bool
) -> bool:
    """BPE tokens cover no more characters than their strings, and none are dropped."""
    if model["type"] != "BPE":
        return False
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return False
    unknown_alone = model.get("unk_token") in vocabulary and not model.get("fuse_unk")
    if byte_level:
        return unknown_alone or _every_character_keeps_a_byte(vocabulary)
    every_byte = bool(model.get("byte_fallback")) and all(
        token in vocabulary for token in BYTE_TOKENS
    )
    return unknown_alone or every_byte


def _every_character_keeps_a_byte(vocabulary: Mapping[str, int]) -> bool:
    """Byte-level: each ASCII byte (but the droppable controls) and each continuation byte
    (every multi-byte character has one) has its character in the vocabulary."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    ascii_text = "".join(chr(byte) for byte in range(0x80) if byte not in DROPPABLE_CONTROLS)
    # U+0080..U+00BF are the bytes C2 80..C2 BF: every continuation byte after the same lead.
    two_byte_text = "".join(chr(byte) for byte in CONTINUATION_BYTES)
    ((ascii_characters, _),) = byte_level.pre_tokenize_str(ascii_text)
    ((two_byte_characters, _),) = byte_level.pre_tokenize_str(two_byte_text)
    needed = {*ascii_characters, *two_byte_characters[1::2]}
    return all(character in vocabulary for character in needed)
