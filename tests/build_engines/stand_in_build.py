"""Run `build-engines --target trtllm` in a subprocess against the stand-ins of
`tests/stand_ins` (TensorRT-LLM's modules and a GPU of a chosen compute capability)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from build_engines.tokenizer_asset import ASSET_DIR

STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"

LLAMA_2_7B_CHAT_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05,
    "vocab_size": 32000,
    "torch_dtype": "float16",
    "bos_token_id": 1,
    "eos_token_id": 2,
}
"""The fields of meta-llama/Llama-2-7b-chat-hf's config.json a conversion reads."""


def write_hf_checkpoint(folder: Path) -> Path:
    """A Hugging Face folder as the build reads it: config, tokenizer, (empty) weights."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(LLAMA_2_7B_CHAT_CONFIG))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(ASSET_DIR / name, folder / name)
    return folder


def run_stand_in_build(
    *arguments: str, sm: int | None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`build-engines --target trtllm ARGUMENTS` on a machine with TensorRT-LLM and one GPU
    of compute capability `sm` (None: no GPU)."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(STAND_INS), os.environ.get("PYTHONPATH", "")]),
        "PATH": os.pathsep.join([str(STAND_INS / "bin"), os.environ["PATH"]]),
    }
    environment.pop("TRTLLM_STAND_IN_SM", None)
    if sm is not None:
        environment["TRTLLM_STAND_IN_SM"] = str(sm)
    return subprocess.run(
        [sys.executable, "-m", "build_engines", "--target", "trtllm", *arguments],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
