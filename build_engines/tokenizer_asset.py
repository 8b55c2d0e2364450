"""The small tokenizer that ships with the CPU twin, built like Llama-2's.

Llama-2's tokenizer is a SentencePiece BPE with byte fallback: ids 0-2 are `<unk>`, `<s>`,
`</s>`, ids 3-258 are the byte tokens `<0x00>`..`<0xFF>`, spaces become `▁`, and any character
missing from the vocabulary is spelled out as UTF-8 bytes. This one has the same structure
with a small vocabulary trained on `corpus.txt`, so the gateway's streaming detokenizer meets
the same hard cases (multi-byte characters split over tokens, word-boundary spaces) without
downloading Llama's 500 KB tokenizer. Regenerate with `python -m build_engines.tokenizer_asset`.

Its `tokenizer_config.json` carries Llama-2-7b-chat's own chat template, verbatim from Hugging
Face's `meta-llama/Llama-2-7b-chat-hf`, so the gateway renders the twin's prompts the way it
renders any model's: from the model's files.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

from llm_contract.model_repository import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE

ASSET_DIR = Path(__file__).parent / "assets" / "tokenizer"
CORPUS_FILE = ASSET_DIR / "corpus.txt"
TOKENIZER_PATH = ASSET_DIR / TOKENIZER_FILE
TOKENIZER_CONFIG_PATH = ASSET_DIR / TOKENIZER_CONFIG_FILE
VOCAB_SIZE = 1024
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
BYTE_TOKENS = tuple(f"<0x{byte:02X}>" for byte in range(256))
LLAMA_2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)
"""Hugging Face's `meta-llama/Llama-2-7b-chat-hf` `tokenizer_config.json` `chat_template`,
verbatim (its `\\n` are Jinja string escapes: the template writes newlines)."""


def train_tokenizer(corpus: Path = CORPUS_FILE, vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    bpe = models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True)  # noqa: S106
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *BYTE_TOKENS],
        limit_alphabet=200,
        show_progress=False,
    )
    tokenizer.train([str(corpus)], trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return _bytes_as_plain_vocabulary(tokenizer)


def _bytes_as_plain_vocabulary(tokenizer: Tokenizer) -> Tokenizer:
    """Keep byte tokens in the vocabulary but not as special tokens, as Llama-2 does.

    The trainer registers them as special tokens to pin their ids; left that way, decoding
    with `skip_special_tokens` would drop every byte-fallback character.
    """
    document = json.loads(tokenizer.to_str())
    document["added_tokens"] = [
        added for added in document["added_tokens"] if added["content"] in SPECIAL_TOKENS
    ]
    return Tokenizer.from_str(json.dumps(document))


def tokenizer_config() -> dict[str, object]:
    """The asset's `tokenizer_config.json`: Llama-2's special tokens and chat template."""
    return {
        "tokenizer_class": "LlamaTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": 4096,
        "chat_template": LLAMA_2_CHAT_TEMPLATE,
    }


def write_tokenizer_config(directory: Path = ASSET_DIR) -> None:
    """Only the config: the trained `tokenizer.json` stays as it is."""
    config = json.dumps(tokenizer_config(), indent=2)
    (directory / TOKENIZER_CONFIG_FILE).write_text(config + "\n")


def write_asset(directory: Path = ASSET_DIR) -> None:
    tokenizer = train_tokenizer()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / TOKENIZER_FILE).write_text(tokenizer.to_str(pretty=True) + "\n")
    write_tokenizer_config(directory)


if __name__ == "__main__":
    write_asset()
    print(f"wrote {TOKENIZER_PATH}")
