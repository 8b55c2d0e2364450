"""The servers under test: CPU model repositories, tritonserver, gateway processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from build_engines.cli import main as build_engines_main
from llm_contract.embeddings import EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import GENERATION_COMPONENT
from local_runtime.ports import free_port
from local_runtime.triton_server import TritonServer

WORK_DIR = Path("var") / "bench"
SPEC = ENGINE_SPECS["int8"]
TRITON_MODELS = [
    SPEC.triton_model(c)
    for c in (GENERATION_COMPONENT, "preprocessing", "postprocessing", "ensemble")
]
GATEWAY_MODEL = "@twin/random/llama-2-7b-chat-int8"
EMBEDDING_GATEWAY_MODEL = "@twin/all-minilm-l6-v2/bge-small-en-v1.5"


def model_repository(tokens_per_second: float, max_in_flight: int) -> Path:
    """The random CPU twins (the gateway's overhead is measured, not a model's speed), paced
    at `tokens_per_second` per stream (0: as fast as they can)."""
    output = WORK_DIR / f"repository-{tokens_per_second:g}tps-{max_in_flight}"
    with building_alone():
        if not (output / SPEC.generation_model).is_dir():
            arguments = ["--target", "cpu", "--twin-model", "random", "--precision", "all",
                         "--output", str(output),
                         "--decode-tokens-per-second", str(tokens_per_second),
                         "--max-batch-size", str(max_in_flight)]  # fmt: skip
            with contextlib.redirect_stdout(sys.stderr):
                assert build_engines_main(arguments) == 0
    return output


def embedding_repository() -> Path:
    """The embedding twin alone, running all-MiniLM-L6-v2's real weights (its forward pass
    is what is measured)."""
    output = WORK_DIR / "repository-embeddings"
    with building_alone():
        if not (output / EMBEDDING_MODEL).is_dir():
            arguments = ["--target", "cpu", "--precision", "none", "--output", str(output)]
            with contextlib.redirect_stdout(sys.stderr):
                assert build_engines_main(arguments) == 0
    return output


@contextlib.contextmanager
def building_alone() -> Iterator[None]:
    """Holds `var/bench`'s build lock: two benchmarks started together (the test suite's
    workers do) build a shared repository once, and neither reads it half-written."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with (WORK_DIR / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def triton(repository: Path, name: str, models: list[str] | None = None) -> Iterator[TritonServer]:
    server = TritonServer.on_free_ports(
        repository,
        log_path=WORK_DIR / f"tritonserver-{name}.log",
        models=models or TRITON_MODELS,
    )
    with server:
        yield server


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    base_url: str
    metrics_url: str
    account_id: str
    token: str
    model: str = GATEWAY_MODEL
    admin_token: str = ""

    @property
    def run_url(self) -> str:
        return f"{self.base_url}/client/v4/accounts/{self.account_id}/ai/run/{self.model}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def open_streams(self) -> int:
        """Generations in progress, as the gateway counts them (`gateway_active_streams`)."""
        text = httpx.get(self.metrics_url, timeout=10).text
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("gateway_active_streams{")
        )


@contextlib.contextmanager
def gateway(
    triton_server: TritonServer,
    repository: Path,
    name: str,
    *,
    metering: bool = True,
    database_url: str | None = None,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    model: str = GATEWAY_MODEL,
) -> Iterator[Gateway]:
    """`gateway serve` (uvicorn, uvloop, httptools) with auth, limits and metering on;
    `env` adds or overrides settings; `model` is the catalog name it is warmed up with."""
    admin = secrets.token_urlsafe(32)
    port = free_port()
    metrics_port = free_port()
    run_dir = WORK_DIR / f"gateway-{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    database = run_dir / "gateway.db"
    database.unlink(missing_ok=True)
    environment = {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{database}",
        "TRITON_GRPC_URL": triton_server.grpc_url,
        "GATEWAY_MODEL_REPOSITORY": str(repository),
        "GATEWAY_ADMIN_TOKEN": admin,
        "GATEWAY_USAGE_JOURNAL_DIR": str(run_dir / "journal"),
        "GATEWAY_USAGE_ENABLED": "true" if metering else "false",
        # Limits are checked on every request; high enough never to refuse the load.
        "GATEWAY_LIMIT_REQUESTS_PER_MINUTE": "10000000",
        "GATEWAY_LIMIT_TOKENS_PER_MINUTE": "1000000000",
        "GATEWAY_LIMIT_CONCURRENT_STREAMS": "100000",
        "GATEWAY_LIMIT_MONTHLY_TOKENS": "1000000000000",
        "GATEWAY_METRICS_PORT": str(metrics_port),
        **(env or {}),
    }
    if redis_url:
        environment["REDIS_URL"] = redis_url
    subprocess.run([sys.executable, "-m", "gateway", "migrate"], env=environment, check=True,
                   capture_output=True)  # fmt: skip
    with (run_dir / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process)
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            account = client.post("/admin/v1/accounts", json={"name": f"bench-{name}"})
            account_id = account.json()["result"]["id"]
            token = client.post(f"/admin/v1/accounts/{account_id}/tokens", json={"name": "b"})
        ready = Gateway(
            process,
            base_url,
            f"http://127.0.0.1:{metrics_port}/metrics",
            account_id,
            token.json()["result"]["token"],
            model,
            admin,
        )
        # Steady state, not a cold start: the token and the account's limits are known.
        warm_up = {"text": "warm up"} if model == EMBEDDING_GATEWAY_MODEL else {
            "prompt": "warm up", "max_tokens": 2}  # fmt: skip
        httpx.post(ready.run_url, json=warm_up,
                   headers={"Authorization": f"Bearer {ready.token}"}, timeout=60)  # fmt: skip
        yield ready
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a loaded machine imports slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("gateway did not become healthy")
