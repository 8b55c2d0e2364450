"""GPU smoke test: build one precision's engine, serve it, stream one answer through the
gateway, print time to first token and tokens per second.

For whoever has a GPU (CI has none): run inside `nvcr.io/nvidia/tritonserver:26.04-trtllm-
python-py3` with this checkout installed (`pip install -e .`), e.g.

    python -m bench.gpu_smoke --checkpoint /checkpoints/Llama-2-7b-chat-hf --precision int8

`--skip-build` serves a repository built before; `--triton-root ''` uses the nvidia-pytriton
wheel's CPU-only server instead of the image's, so the same steps run against the CPU twins
(that is how the test suite runs this script).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import stack
from build_engines.cli import main as build_engines_main
from llm_contract.engines import ENGINE_SPECS, PRECISIONS, EngineSpec
from llm_contract.model_repository import (
    GENERATION_COMPONENT,
    TEXT_PATH_COMPONENTS,
    TOKENIZER_FOLDER,
)
from local_runtime.triton_server import TritonLaunchError, TritonRuntime, TritonServer

WORK_DIR = Path("var") / "gpu-smoke"
PROMPT = "What is the capital of France? Answer in one sentence."


@dataclass
class StreamedAnswer:
    started: float
    first_token_at: float | None = None
    finished_at: float | None = None
    text: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    @property
    def decode_tokens_per_second(self) -> float | None:
        """Tokens after the first over the time they took: the engine's decode speed."""
        if self.first_token_at is None or self.finished_at is None or self.completion_tokens < 2:
            return None
        return (self.completion_tokens - 1) / max(1e-9, self.finished_at - self.first_token_at)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="Hugging Face Llama-2-7b-chat folder")
    parser.add_argument("--precision", choices=PRECISIONS, default="int8")
    parser.add_argument("--output", type=Path, default=WORK_DIR / "model_repository")
    parser.add_argument("--skip-build", action="store_true", help="serve --output as it is")
    parser.add_argument(
        "--triton-root",
        default="/opt/tritonserver",
        help="installed Triton (default: %(default)s); '' for the nvidia-pytriton wheel's",
    )
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--load-timeout", type=float, default=900.0, help="seconds")
    args = parser.parse_args(argv)
    if not args.skip_build and args.checkpoint is None:
        parser.error("--checkpoint is needed unless --skip-build")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spec = ENGINE_SPECS[args.precision]
    if not args.skip_build:
        build = ["--target", "trtllm", "--precision", args.precision,
                 "--checkpoint", str(args.checkpoint), "--output", str(args.output),
                 "--work-dir", str(WORK_DIR / "build")]  # fmt: skip
        if build_engines_main(build) != 0:
            return 2
    try:
        runtime = TritonRuntime.from_install(Path(args.triton_root)) if args.triton_root else None
        triton = TritonServer.on_free_ports(
            args.output,
            runtime=runtime,
            models=[spec.triton_model(c) for c in (GENERATION_COMPONENT, *TEXT_PATH_COMPONENTS)],
            log_path=WORK_DIR / "tritonserver.log",
        )
        print(f"starting tritonserver on {args.output} (log {triton.log_path})", flush=True)
        triton.start(timeout=args.load_timeout)
    except TritonLaunchError as error:
        print(f"gpu-smoke: {error}", file=sys.stderr)
        return 1
    model = catalog_name(spec)
    env = {"GATEWAY_CATALOG_FILE": str(_write_catalog(spec, args.output))}
    try:
        with stack.gateway(triton, args.output, "gpu-smoke", env=env, model=model) as gateway:
            answer = stream_one(gateway, args.max_tokens)
    finally:
        triton.stop()
    return report(answer, model)


def catalog_name(spec: EngineSpec) -> str:
    return f"@cf/meta/llama-2-7b-chat-{spec.precision}"


def _write_catalog(spec: EngineSpec, repository: Path) -> Path:
    """The production catalog's entry for this engine, its tokenizer read from `repository`."""
    generation_model = spec.generation_model
    entry = {
        "name": catalog_name(spec),
        "triton_model": generation_model,
        "tokenizer_dir": str((repository / generation_model / TOKENIZER_FOLDER).resolve()),
        "max_input_tokens": spec.limits.max_input_len,
        "max_output_tokens": spec.limits.max_output_len,
        "precision": spec.precision,
        "description": f"{spec.description} (TensorRT-LLM engine)",
    }
    path = WORK_DIR / "catalog.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"models": [entry]}, indent=2))
    return path


def stream_one(gateway: stack.Gateway, max_tokens: int) -> StreamedAnswer:
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True}  # fmt: skip
    headers = {"Authorization": f"Bearer {gateway.token}"}
    answer = StreamedAnswer(started=time.perf_counter())
    with httpx.stream("POST", gateway.run_url, json=body, headers=headers, timeout=300) as reply:
        if reply.status_code != 200:
            answer.error = f"HTTP {reply.status_code}: {reply.read().decode()[:300]}"
            return answer
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("errors"):
                answer.error = str(event["errors"])
            if event.get("response"):
                answer.first_token_at = answer.first_token_at or time.perf_counter()
                answer.text.append(event["response"])
            with contextlib.suppress(KeyError, TypeError):
                answer.prompt_tokens = event["usage"]["prompt_tokens"]
                answer.completion_tokens = event["usage"]["completion_tokens"]
    answer.finished_at = time.perf_counter()
    return answer


def report(answer: StreamedAnswer, model: str) -> int:
    print(f"model: {model}")
    print(f"answer: {''.join(answer.text)!r}")
    if answer.error is not None or answer.ttft is None:
        print(f"gpu-smoke: no answer: {answer.error}", file=sys.stderr)
        return 1
    speed = answer.decode_tokens_per_second
    print(f"tokens: {answer.prompt_tokens} in, {answer.completion_tokens} out")
    print(f"time to first token: {answer.ttft * 1000:.0f} ms")
    print(f"decode: {'n/a' if speed is None else f'{speed:.1f}'} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
