"""Rounds of concurrent `generate_stream` requests on the BLS model, watching its stub.

Triton 24.10 keeps answering ready after a Python-backend stub dies, so a round checks the
stub process itself: the same pid before and after, and no abort in the server's log.

    python -m tests.backend.bls_soak --rounds 30 --concurrency 64

starts a tritonserver of its own on a fresh CPU repository (int8) and prints one line per
round and a summary; `--repository` reuses a built one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from build_engines.cli import main as build_engines_main
from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer

STUB_DEATH_MARKERS = ("double free", "corruption", "Stub process", "Non-graceful termination")
PROMPT = "Tell me a story about the sea"


def python_stubs(server_pid: int) -> dict[str, list[int]]:
    """The `triton_python_backend_stub` children of a tritonserver, by model name."""
    stubs: dict[str, list[int]] = {}
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if len(argv) > 1 and argv[0].endswith(b"triton_python_backend_stub"):
                model = Path(os.fsdecode(argv[1])).parent.parent.name
                stubs.setdefault(model, []).append(int(child))
    return stubs


def stub_is_alive(pid: int) -> bool:
    """A stub that died stays a zombie until Triton reaps it: alive means not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@dataclass
class Round:
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def stream_once(url: str, model: str, max_tokens: int, timeout: float) -> str | None:
    """One streamed generation to its end; None, or what went wrong."""
    body = {"text_input": PROMPT, "max_tokens": max_tokens, "stream": True}
    try:
        with httpx.stream(
            "POST", f"{url}/v2/models/{model}/generate_stream", json=body, timeout=timeout
        ) as reply:
            events = [
                json.loads(line[len("data: ") :])
                for line in reply.iter_lines()
                if line.startswith("data: ")
            ]
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    errors = [str(event["error"]) for event in events if "error" in event]
    if reply.status_code != 200 or errors or not events:
        return f"{reply.status_code}: {errors or 'no events'}"
    return None


def run_round(url: str, model: str, *, concurrency: int, max_tokens: int, timeout: float) -> Round:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(
            pool.map(lambda _: stream_once(url, model, max_tokens, timeout), range(concurrency))
        )
    failures = [outcome for outcome in outcomes if outcome is not None]
    return Round(concurrency - len(failures), failures, time.monotonic() - started)


def stub_death_lines(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if any(m in line for m in STUB_DEATH_MARKERS)]


def soak(server: TritonServer, model: str, args: argparse.Namespace) -> int:
    """Print one line per round; stop at the first round whose stub died. Rounds failed."""
    assert server.process is not None
    stub_pid = python_stubs(server.process.pid)[model][0]
    failed = 0
    for number in range(1, args.rounds + 1):
        result = run_round(
            server.http_url,
            model,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            timeout=args.timeout,
        )
        alive = stub_is_alive(stub_pid)
        deaths = stub_death_lines(server.log_text())
        print(
            f"round {number}: {result.completed}/{args.concurrency} completed in "
            f"{result.seconds:.1f}s, stub {'alive' if alive else 'DEAD'}"
            + (f", first failure {result.failures[0]!r}" if result.failures else ""),
            flush=True,
        )
        if result.failures or not alive or deaths:
            failed += 1
        if not alive or deaths:
            print("\n".join(deaths[-5:]), flush=True)
            break
    print(f"summary: {failed} of {number} rounds failed", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--repository", type=Path, help="a built CPU repository to reuse")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "bls-soak.log")
    args = parser.parse_args(argv)
    repository = args.repository
    if repository is None:
        repository = Path(tempfile.mkdtemp(prefix="bls-soak-")) / "model_repository"
        build = ["--target", "cpu", "--precision", "int8", "--twin-model", "random"]
        build += ["--output", str(repository)]
        assert build_engines_main(build) == 0
    spec = ENGINE_SPECS["int8"]
    server = TritonServer.on_free_ports(
        repository,
        log_path=args.log,
        models=[spec.generation_model, spec.triton_model("bls")],
    )
    with server:
        failed = soak(server, spec.triton_model("bls"), args)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
