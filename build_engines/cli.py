"""`build-engines`: write a complete Triton model repository for each engine.

build-engines --target cpu --precision all --output model_repository
build-engines --target cpu --precision all --twin-model random --output model_repository
build-engines --target trtllm --precision int8 --checkpoint ./Llama-2-7b-chat-hf --dry-run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from build_engines.embedding_engine import (
    EMBEDDING_TOKENIZER_FILES,
    EmbeddingBuildPlan,
    check_embedding_build_environment,
    compile_plan,
    export_onnx,
)
from build_engines.embedding_repository import EmbeddingRepositoryPlan, write_embedding_model
from build_engines.pinned_wheel import WeightsUnavailable
from build_engines.repository import RepositoryPlan, write_repository
from build_engines.trtllm_engine import (
    EngineBuildPlan,
    EngineBuildUnavailable,
    build_engine,
    check_build_environment,
    checkpoint_tokenizer_files,
)
from build_engines.twin_models import TWIN_MODELS, embedding_twin, load_twin_model
from llm_contract.embeddings import BGE_SMALL_EN_V1_5
from llm_contract.engines import ENGINE_SPECS, PRECISIONS, EngineSpec, Precision


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build-engines", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--target",
        choices=["cpu", "trtllm"],
        required=True,
        help="trtllm: compile TensorRT-LLM engines (GPU); cpu: the CPU twin",
    )
    parser.add_argument(
        "--precision",
        choices=[*PRECISIONS, "all", "none"],
        required=True,
        help="the Llama-2 engines (or their twins) to build; none: only the embedding model",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("model_repository"),
        help="model repository to write into (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="Hugging Face Llama-2-7b-chat checkpoint folder (trtllm)"
    )
    parser.add_argument(
        "--embedding-checkpoint",
        type=Path,
        help="trtllm: also build the text-embedding model (a TensorRT plan) from this Hugging "
        "Face folder of BAAI/bge-small-en-v1.5",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where checkpoints and engines are built (default: var/engine-build)",
    )
    parser.add_argument(
        "--serve-root", type=Path, help="path at which Triton will mount --output (engine paths)"
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        help="in-flight requests per model (default: trtllm 64, cpu 256)",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="trtllm: GPUs Triton sees; one engine instance on each (default: %(default)s)",
    )
    parser.add_argument(
        "--decode-tokens-per-second",
        type=float,
        default=0.0,
        help="cpu: pace each stream like a GPU (0 = as fast as possible)",
    )
    parser.add_argument(
        "--twin-model",
        choices=TWIN_MODELS,
        default="smollm2",
        help="cpu: the model the twins run: SmolLM2-135M-Instruct (real answers, and the "
        "embedding twin beside them), or a tiny random network (a fast synthetic text backend "
        "for tests, no embedding twin); default: %(default)s",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="trtllm: print the conversion and build plan and stop",
    )
    args = parser.parse_args(argv)
    if args.precision == "none" and args.target == "trtllm" and args.embedding_checkpoint is None:
        parser.error("--target trtllm --precision none builds only the embedding model: give "
                     "--embedding-checkpoint")  # fmt: skip
    if args.target == "trtllm" and args.checkpoint is None and args.precision != "none":
        parser.error("--target trtllm needs --checkpoint")
    if args.gpus < 1:
        parser.error("--gpus must be at least 1")
    return args


def selected_specs(precision: str) -> list[EngineSpec]:
    if precision == "none":
        return []
    precisions: tuple[Precision, ...] = PRECISIONS if precision == "all" else (precision,)  # type: ignore[assignment]
    return [ENGINE_SPECS[name] for name in precisions]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    specs = selected_specs(args.precision)
    if args.target == "cpu":
        return _write_cpu_repositories(args, specs)
    return _build_trtllm(args, specs)


def _write_cpu_repositories(args: argparse.Namespace, specs: list[EngineSpec]) -> int:
    """Convert the twin model once, write each engine's twin in its precision, then (with
    the real model) the embedding twin."""
    try:
        with tempfile.TemporaryDirectory(prefix="twin-model-") as scratch:
            if specs:
                twin = load_twin_model(args.twin_model, Path(scratch))
            for spec in specs:
                plan = RepositoryPlan(
                    target="cpu",
                    spec=spec,
                    output=args.output,
                    tokenizer_files=twin.tokenizer_files,
                    max_batch_size=args.max_batch_size or 256,
                    decode_tokens_per_second=args.decode_tokens_per_second,
                    serve_root=args.serve_root,
                    twin=twin,
                )
                for model_dir in write_repository(plan):
                    print(f"wrote {model_dir}")
        if args.twin_model == "random":
            return 0
        embedding = embedding_twin()
    except WeightsUnavailable as error:
        print(f"build-engines: {error}", file=sys.stderr)
        return 2
    embedding_plan = EmbeddingRepositoryPlan(
        target="cpu",
        spec=BGE_SMALL_EN_V1_5,
        output=args.output,
        tokenizer_files=embedding.tokenizer_files,
        twin=embedding,
    )
    print(f"wrote {write_embedding_model(embedding_plan)}")
    return 0


def _build_trtllm(args: argparse.Namespace, specs: list[EngineSpec]) -> int:
    work_dir = args.work_dir or Path("var") / "engine-build"
    plans = [
        EngineBuildPlan(
            spec=spec,
            checkpoint=args.checkpoint,
            checkpoint_dir=work_dir / f"{spec.precision}-checkpoint",
            engine_dir=work_dir / f"{spec.precision}-engine",
            max_batch_size=args.max_batch_size or 64,
        )
        for spec in specs
    ]
    embedding_plan = None
    if args.embedding_checkpoint is not None:
        embedding_plan = EmbeddingBuildPlan(
            BGE_SMALL_EN_V1_5, args.embedding_checkpoint, work_dir / "embedding"
        )
    for plan in plans:
        print(plan.describe())
    if embedding_plan is not None:
        print(embedding_plan.describe())
    if args.dry_run:
        return 0
    try:
        if plans:
            check_build_environment([plan.spec.precision for plan in plans])
            tokenizer_files = checkpoint_tokenizer_files(args.checkpoint)
        if embedding_plan is not None:
            check_embedding_build_environment()
            embedding_tokenizer_files = checkpoint_tokenizer_files(
                embedding_plan.checkpoint, EMBEDDING_TOKENIZER_FILES
            )
    except (EngineBuildUnavailable, FileNotFoundError) as error:
        print(f"build-engines: {error}", file=sys.stderr)
        return 2
    if embedding_plan is not None:
        export_onnx(embedding_plan)
        repository_plan = EmbeddingRepositoryPlan(
            target="trtllm",
            spec=BGE_SMALL_EN_V1_5,
            output=args.output,
            tokenizer_files=embedding_tokenizer_files,
            plan_file=compile_plan(embedding_plan),
        )
        print(f"wrote {write_embedding_model(repository_plan)}")
    for plan in plans:
        engine_dir = build_engine(plan)
        repository = RepositoryPlan(
            target="trtllm",
            spec=plan.spec,
            output=args.output,
            tokenizer_files=tokenizer_files,
            max_batch_size=plan.max_batch_size,
            engine_files=engine_dir,
            serve_root=args.serve_root,
            gpus=args.gpus,
        )
        for model_dir in write_repository(repository):
            print(f"wrote {model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
