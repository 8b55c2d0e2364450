"""`build-engines --target trtllm --embedding-checkpoint …` end to end against stand-ins of
torch, transformers, TensorRT and a GPU (tests/stand_ins): the ONNX export and the TensorRT
plan as the real ones would be asked for, written into Triton's `tensorrt` backend layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from build_engines import minilm
from llm_contract.embeddings import BGE_SMALL_EN_V1_5, EMBEDDING_MODEL
from tests.build_engines.stand_in_build import run_stand_in_build, write_hf_checkpoint

pytestmark = pytest.mark.slow  # the build runs in a process

HOPPER = 90


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Llama-2's folder (the build always makes its engine) and a bge-like one: config and
    tokenizer files (MiniLM's: bge-small-en-v1.5 has the same BERT tokenizer kind)."""
    root = tmp_path_factory.mktemp("hf")
    bge = root / "bge-small-en-v1.5"
    bge.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy2(minilm.model_folder() / name, bge / name)
    return write_hf_checkpoint(root / "Llama-2-7b-chat-hf"), bge


def build(tmp_path: Path, checkpoints: tuple[Path, Path], sm: int | None) -> tuple[int, str, Path]:
    llama, bge = checkpoints
    output = tmp_path / "model_repository"
    result = run_stand_in_build(
        "--precision", "fp16", "--checkpoint", str(llama), "--embedding-checkpoint", str(bge),
        "--output", str(output), "--work-dir", str(tmp_path / "work"), sm=sm, cwd=tmp_path,
    )  # fmt: skip
    return result.returncode, result.stderr, output


def test_the_plan_takes_the_contracts_tensors_with_one_profile_up_to_the_limits(
    tmp_path: Path, checkpoints: tuple[Path, Path]
) -> None:
    code, stderr, repository = build(tmp_path, checkpoints, HOPPER)
    assert code == 0, stderr
    plan = json.loads((repository / EMBEDDING_MODEL / "1" / "model.plan").read_text())
    assert plan["inputs"] == ["input_ids", "attention_mask"]
    assert plan["outputs"] == ["mean_embedding", "cls_embedding"]
    assert plan["flags"] == ["FP16"]
    spec = BGE_SMALL_EN_V1_5
    limits = [[1, 1], [spec.max_batch_size, 128], [spec.max_batch_size, spec.max_input_tokens]]
    assert plan["profiles"] == [{"input_ids": limits, "attention_mask": limits}]


def test_the_export_names_the_tensors_and_leaves_batch_and_length_free(
    tmp_path: Path, checkpoints: tuple[Path, Path]
) -> None:
    code, stderr, _ = build(tmp_path, checkpoints, HOPPER)
    assert code == 0, stderr
    export = json.loads((tmp_path / "work" / "embedding" / "bge-small-en-v1.5.onnx").read_text())
    assert export["opset_version"] == 17
    assert export["dynamo"] is False
    assert export["example_inputs"] == [[[2, 8], "torch.int32"]] * 2
    assert export["dynamic_axes"] == {
        "input_ids": {"0": "batch", "1": "length"},
        "attention_mask": {"0": "batch", "1": "length"},
        "mean_embedding": {"0": "batch"},
        "cls_embedding": {"0": "batch"},
    }


def test_the_repository_serves_the_plan_on_the_tensorrt_backend_with_its_tokenizer(
    tmp_path: Path, checkpoints: tuple[Path, Path]
) -> None:
    code, stderr, repository = build(tmp_path, checkpoints, HOPPER)
    assert code == 0, stderr
    model = repository / EMBEDDING_MODEL
    config = (model / "config.pbtxt").read_text()
    assert 'backend: "tensorrt"' in config
    assert "max_batch_size: 32" in config
    assert "kind: KIND_GPU" in config
    assert '{ name: "input_ids" data_type: TYPE_INT32 dims: [ -1 ] }' in config
    assert '{ name: "mean_embedding" data_type: TYPE_FP32 dims: [ 384 ] }' in config
    assert sorted(path.name for path in (model / "tokenizer").iterdir()) == [
        "tokenizer.json", "tokenizer_config.json", "vocab.txt",
    ]  # fmt: skip


def test_without_a_gpu_the_build_stops_before_exporting_with_the_reason(
    tmp_path: Path, checkpoints: tuple[Path, Path]
) -> None:
    code, stderr, repository = build(tmp_path, checkpoints, None)
    assert code == 2
    assert "no NVIDIA GPU is visible" in stderr
    assert "Traceback" not in stderr
    assert not (repository / EMBEDDING_MODEL).exists()
