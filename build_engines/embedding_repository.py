"""Write the text-embedding model into a Triton model repository.

bge_small_en_v1_5/config.pbtxt     the TensorRT plan's config, or its CPU twin's
bge_small_en_v1_5/1/               model.plan, or the twin's code and weights.npz
bge_small_en_v1_5/tokenizer/       tokenizer.json the gateway tokenizes with
bge_small_en_v1_5/twin.json        (CPU twin) the model it runs, for the catalog
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from build_engines.embedding_twin.bert import BertShape, BertWeights
from build_engines.render import parameters_block, render_template, tensors_block
from build_engines.repository import Target, copy_python_package
from llm_contract.embeddings import EMBEDDING_MODEL, EmbeddingSpec
from llm_contract.model_repository import TOKENIZER_FOLDER, TWIN_DESCRIPTION_FILE, TwinDescription

WEIGHTS_FILE = "weights.npz"
PLAN_FILE = "model.plan"
MAX_QUEUE_DELAY_MICROSECONDS = 2000
"""How long Triton holds a request for others of its shape: ~2 % of a short pass on a GPU,
and on the twin a fraction of one."""


@dataclass(frozen=True)
class EmbeddingTwin:
    name: str
    title: str
    weights: BertWeights
    tokenizer_files: tuple[Path, ...]


@dataclass(frozen=True)
class EmbeddingRepositoryPlan:
    target: Target
    spec: EmbeddingSpec
    output: Path
    tokenizer_files: tuple[Path, ...]
    twin: EmbeddingTwin | None = None
    plan_file: Path | None = None

    @property
    def model_dir(self) -> Path:
        return self.output / EMBEDDING_MODEL


def write_embedding_model(plan: EmbeddingRepositoryPlan) -> Path:
    model_dir = plan.model_dir
    if model_dir.exists():
        shutil.rmtree(model_dir)
    (model_dir / TOKENIZER_FOLDER).mkdir(parents=True)
    for tokenizer_file in plan.tokenizer_files:
        shutil.copy2(tokenizer_file, model_dir / TOKENIZER_FOLDER / tokenizer_file.name)
    version_dir = model_dir / "1"
    if plan.target == "cpu":
        backend, kind, instances = "python", "KIND_CPU", 1
        parameters = _write_twin(plan, version_dir)
    else:
        # KIND_GPU's count is per GPU: one instance on each GPU Triton sees.
        backend, kind, instances = "tensorrt", "KIND_GPU", 1
        parameters = {}
        version_dir.mkdir()
        if plan.plan_file is not None:
            shutil.copy2(plan.plan_file, version_dir / PLAN_FILE)
    config = render_template(
        "embedding",
        {
            "model_name": EMBEDDING_MODEL,
            "backend": backend,
            "max_batch_size": plan.spec.max_batch_size,
            "max_queue_delay_microseconds": MAX_QUEUE_DELAY_MICROSECONDS,
            "inputs": tensors_block(plan.spec.inputs()),
            "outputs": tensors_block(plan.spec.outputs()),
            "instance_count": instances,
            "instance_kind": kind,
            "parameters": parameters_block(parameters),
        },
    )
    (model_dir / "config.pbtxt").write_text(config)
    return model_dir


def _write_twin(plan: EmbeddingRepositoryPlan, version_dir: Path) -> dict[str, object]:
    twin = plan.twin
    if twin is None:
        raise ValueError("a CPU repository needs the model its embedding twin runs")
    copy_python_package(version_dir, "embedding_twin", "triton_model")
    twin.weights.save(version_dir / WEIGHTS_FILE)
    description = dataclasses.asdict(TwinDescription(model=twin.name, title=twin.title))
    (plan.model_dir / TWIN_DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    shape: BertShape = twin.weights.shape
    return {
        "weights_file": WEIGHTS_FILE,
        "max_input_tokens": plan.spec.max_input_tokens,
        **dataclasses.asdict(shape),
    }
