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
  character is unknown; an added token that strips the whitespace around it could cover any
  amount of it, so there must be none among the added tokens user text can match.

A tokenizer outside these conditions (another normalizer, a subword prefix, truncation)
gets no bound (`None`): its prompts are always tokenized in full.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokenizers import Tokenizer

BYTE_TOKENS = tuple(f"<0x{byte:02X}>" for byte in range(256))


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
    if not _bpe_tokens_cover_their_string(document["model"], vocabulary):
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
    if kind in ("Prepend", "Metaspace"):
        return True
    if kind == "Replace":
        pattern = step["pattern"].get("String")
        return pattern is not None and len(step["content"]) >= len(pattern)
    return False


def _bpe_tokens_cover_their_string(model: Mapping[str, Any], vocabulary: Mapping[str, int]) -> bool:
    if model["type"] != "BPE":
        return False
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return False
    if not model.get("fuse_unk"):
        return True
    return bool(model.get("byte_fallback")) and all(token in vocabulary for token in BYTE_TOKENS)
