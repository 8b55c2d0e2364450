"""`python -m bench.twin`: the CPU twin's network alone, as Triton's stub would load it.

    python -m bench.twin                         # SmolLM2 twins, built once into var/bench
    python -m bench.twin --repository model_repository

For each precision, a fresh process loads the twin's weights file and measures load time,
resident memory, the prefill of a 500-token prompt, and decode tokens/s at batch 1, 8, 32
(each request with its own ~40-token context and KV cache, as the scheduler runs them).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_contract.engines import ENGINE_SPECS, PRECISIONS
from llm_contract.model_repository import TWIN_DESCRIPTION_FILE

BATCHES = (1, 8, 32)
PROMPT_TOKENS = 500
CONTEXT_TOKENS = 40


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.twin", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repository", type=Path, help="a built CPU repository to measure")
    parser.add_argument("--steps", type=int, default=32, help="decode steps per batch size")
    parser.add_argument("--measure", nargs=2, metavar=("MODEL_DIR", "PRECISION"),
                        help=argparse.SUPPRESS)  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.steps)))
        return 0
    repository = args.repository or smollm2_repository()
    rows = []
    for precision in PRECISIONS:
        model_dir = repository / ENGINE_SPECS[precision].generation_model
        command = [sys.executable, "-m", "bench.twin", "--measure", str(model_dir), precision]
        completed = subprocess.run(
            [*command, "--steps", str(args.steps)], check=True, capture_output=True, text=True
        )
        rows.append(json.loads(completed.stdout))
    print(markdown(rows))
    return 0


def smollm2_repository() -> Path:
    from bench.stack import WORK_DIR, building_alone
    from build_engines.cli import main as build_engines_main

    output = WORK_DIR / "repository-smollm2"
    with building_alone():
        if not (output / ENGINE_SPECS["fp16"].generation_model / TWIN_DESCRIPTION_FILE).is_file():
            arguments = ["--target", "cpu", "--precision", "all", "--output", str(output)]
            with contextlib.redirect_stdout(sys.stderr):
                assert build_engines_main(arguments) == 0
    return output


def measure(model_dir: Path, steps: int) -> dict[str, Any]:
    """One twin's figures, in this (fresh) process."""
    from google.protobuf import text_format  # type: ignore[import-untyped]
    from tritonclient.grpc import model_config_pb2

    from build_engines.cpu_twin.config import parse_twin_config
    from build_engines.cpu_twin.network import LlamaNetwork
    from build_engines.cpu_twin.weights import load_weights

    model_config = model_config_pb2.ModelConfig()
    text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config)
    parameters = {key: {"string_value": value.string_value}
                  for key, value in model_config.parameters.items()}  # fmt: skip
    config = parse_twin_config(parameters)
    started = time.perf_counter()
    weights = load_weights(model_dir / "1" / config.weights_file, config.network,
                           config.weight_precision)  # fmt: skip
    network = LlamaNetwork(config.network, weights)
    load_seconds = time.perf_counter() - started
    loaded_rss_mib = _status_kib("VmRSS") / 1024
    rng = np.random.default_rng(0)
    vocab = config.network.vocab_size
    prefill = []
    for _ in range(3):
        prompt = rng.integers(3, vocab, PROMPT_TOKENS)
        started = time.perf_counter()
        network.prefill(prompt, network.new_cache())
        prefill.append(time.perf_counter() - started)
    decode = {}
    for batch in BATCHES:
        caches = [network.new_cache() for _ in range(batch)]
        for cache in caches:
            network.prefill(rng.integers(3, vocab, CONTEXT_TOKENS), cache)
        tokens = rng.integers(3, vocab, batch)
        network.decode(tokens, caches)
        started = time.perf_counter()
        for _ in range(steps):
            logits = network.decode(tokens, caches)
            tokens = np.argmax(logits, axis=1)
        decode[str(batch)] = batch * steps / (time.perf_counter() - started)
    return {
        "precision": config.weight_precision,
        "file_mib": (model_dir / "1" / config.weights_file).stat().st_size / 2**20,
        "load_s": load_seconds,
        "rss_mib": loaded_rss_mib,
        "peak_rss_mib": _status_kib("VmHWM") / 1024,
        "prefill_500_s": statistics.median(prefill),
        "decode_tokens_per_s": decode,
    }


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| twin | weights file | load | RSS loaded (peak) | 500-token prefill "
        "| decode tok/s: batch 1 | batch 8 | batch 32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        decode = row["decode_tokens_per_s"]
        lines.append(
            f"| {row['precision']} | {row['file_mib']:.0f} MiB | {row['load_s']:.1f} s "
            f"| {row['rss_mib']:.0f} MiB ({row['peak_rss_mib']:.0f}) "
            f"| {row['prefill_500_s']:.2f} s | "
            + " | ".join(f"{decode[str(batch)]:.0f}" for batch in BATCHES)
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
