"""`gateway up` and `triton-launch` own their tritonserver: it ends with them however they end,
they refuse ports another server holds, and they stop restarting a Triton that keeps exiting.

Real processes, real signals, the wheel's real tritonserver (on the two CPU twins only, which
load in seconds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local_runtime.ports import free_port, port_is_free
from local_runtime.triton_server import TritonServer
from tests.triton_fixtures import SERVED_MODELS

pytestmark = pytest.mark.triton
STARTUP_TIMEOUT = 120.0
GONE_WITHIN = 20.0
"""Triton drains for up to its --exit-timeout-secs (10 s) after SIGTERM; idle, it takes ~4 s."""


def is_gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie nobody reaped yet has ended too)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = GONE_WITHIN) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_gone(pid):
            return True
        time.sleep(0.1)
    return False


def triton_ports() -> tuple[int, int]:
    """Free (http, grpc) ports; `gateway up` puts metrics on http + 2, so that one is free too."""
    while True:
        http, grpc = free_port(), free_port()
        if len({http, http + 2, grpc}) == 3 and port_is_free("127.0.0.1", http + 2):
            return http, grpc


@dataclass
class Launched:
    """A `gateway up` or `triton-launch` process, its output in files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the output:\n{self.output()}")

    def triton_pid(self) -> int:
        return int(self.wait_for(r"tritonserver ready \(pid (\d+)").group(1))

    def exit_code(self, timeout: float) -> int:
        return self.process.wait(timeout)


Launch = Callable[..., Launched]
"""`launch("module", *args, **env)`: `python -m module *args` with `env` added."""


def copy_of_the_twins(source: Path, repository: Path) -> Path:
    """Only the CPU twins of `source` (the generation models, and the embedding twin of the
    default build): all `gateway up` needs, and quick to load."""
    for name in SERVED_MODELS:
        if (source / name).is_dir():
            shutil.copytree(source / name, repository / name)
    return repository


@pytest.fixture(scope="module")
def twins_repository(cpu_model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_the_twins(
        cpu_model_repository, tmp_path_factory.mktemp("twins") / "model_repository"
    )


@pytest.fixture
def empty_repository(tmp_path: Path) -> Path:
    """A model repository with no models: a tritonserver that starts in a second."""
    repository = tmp_path / "empty_repository"
    repository.mkdir()
    return repository


RUN_MODULE_WITH_SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', *sys.argv[1:]])"
)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Starts a CLI command in `tmp_path`; whatever is still running at the end is killed.

    The command starts with SIGINT ignored, as a script's background job does (and some CI
    runners): the CLIs must stop on SIGINT all the same."""
    started: list[Launched] = []

    def start(*command: str, **env: str) -> Launched:
        name = f"launched-{len(started)}"
        stdout, stderr = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-c", RUN_MODULE_WITH_SIGINT_IGNORED, *command],
                cwd=tmp_path,
                env={**os.environ, **env},
                stdout=out,
                stderr=err,
            )
        started.append(Launched(process, stdout, stderr))
        return started[-1]

    yield start
    for launched in started:
        if launched.process.poll() is None:
            launched.process.kill()
            launched.process.wait(10)


GatewayUp = Callable[..., Launched]
"""`gateway_up(**env)`: `gateway up` on free ports and the twins, with `env` added."""


@pytest.fixture
def gateway_up(launch: Launch, twins_repository: Path, tmp_path: Path) -> GatewayUp:
    def start(**env: str) -> Launched:
        http, grpc = triton_ports()
        defaults = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
            "GATEWAY_MODEL_REPOSITORY": str(twins_repository),
            "GATEWAY_ADMIN_TOKEN": "lifecycle-admin-token-0123456789abcdef0123",
            "GATEWAY_USAGE_JOURNAL_DIR": str(tmp_path / "usage-journal"),
            "GATEWAY_SHUTDOWN_GRACE_SECONDS": "1",
            "TRITON_HTTP_URL": f"http://127.0.0.1:{http}",
            "TRITON_GRPC_URL": f"127.0.0.1:{grpc}",
        }
        return launch("gateway", "up", "--port", str(free_port()), **{**defaults, **env})

    return start


def test_the_printed_curl_streams_the_default_models_answer(
    gateway_up: GatewayUp, smollm2_model_repository: Path, tmp_path: Path
) -> None:
    """What a new user does first: `gateway up` on the default build, then its curl line."""
    repository = copy_of_the_twins(smollm2_model_repository, tmp_path / "model_repository")
    up = gateway_up(GATEWAY_MODEL_REPOSITORY=str(repository))
    command = up.wait_for(r"(?s)Stream tokens with:\n\n(.+?)\n\n").group(1)
    up.wait_for("Application startup complete")
    completed = subprocess.run(
        ["bash", "-c", command.replace("\\\n", " ")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = completed.stdout.splitlines()
    events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    pieces = [json.loads(event) for event in events if event.startswith("{")]
    assert "".join(str(piece["response"]) for piece in pieces) == "The capital of France is Paris."
    assert events[-1] == "[DONE]"
    up.process.send_signal(signal.SIGTERM)
    assert up.exit_code(timeout=60) == 0, up.output()


def kill_triton(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    assert wait_until_gone(pid, 10)


def test_sigterm_stops_gateway_up_and_its_tritonserver_with_status_0(gateway_up: GatewayUp) -> None:
    up = gateway_up()
    triton = up.triton_pid()
    up.wait_for("Stream tokens with")
    up.process.send_signal(signal.SIGTERM)
    assert up.exit_code(timeout=60) == 0, up.output()
    assert is_gone(triton)


def test_killing_gateway_up_ends_its_tritonserver(gateway_up: GatewayUp) -> None:
    up = gateway_up()
    triton = up.triton_pid()
    up.process.kill()
    assert wait_until_gone(triton)


def test_killing_gateway_up_ends_a_tritonserver_it_restarted(gateway_up: GatewayUp) -> None:
    up = gateway_up()
    kill_triton(up.triton_pid())
    restarted = int(up.wait_for(r"restarted \(pid (\d+)\)").group(1))
    up.process.kill()
    assert wait_until_gone(restarted)


@pytest.mark.parametrize(
    "end", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"]
)
def test_tritonserver_ends_with_triton_launch(
    launch: Launch, empty_repository: Path, end: signal.Signals
) -> None:
    http, grpc = triton_ports()
    launcher = launch(
        "local_runtime.triton_launch",
        f"--model-repository={empty_repository}",
        f"--http-port={http}",
        f"--grpc-port={grpc}",
        f"--metrics-port={http + 2}",
    )
    triton = launcher.triton_pid()
    launcher.process.send_signal(end)
    assert wait_until_gone(triton)


def test_gateway_up_refuses_a_triton_port_another_listener_holds(
    gateway_up: GatewayUp, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        up = gateway_up(TRITON_HTTP_URL=f"http://127.0.0.1:{port}")
        code = up.exit_code(timeout=60)
    assert code == 1
    assert f"127.0.0.1:{port} (http)" in up.stderr.read_text()
    assert "Traceback" not in up.output()
    assert not list(tmp_path.glob("var/triton/tritonserver-*.log")), "it started a tritonserver"


def test_gateway_up_does_not_adopt_a_tritonserver_left_running(
    gateway_up: GatewayUp, empty_repository: Path, tmp_path: Path
) -> None:
    http, grpc = triton_ports()
    leftover = TritonServer(
        empty_repository, http_port=http, grpc_port=grpc, metrics_port=http + 2,
        log_path=tmp_path / "leftover.log",
    )  # fmt: skip
    with leftover:
        up = gateway_up(
            TRITON_HTTP_URL=f"http://127.0.0.1:{http}", TRITON_GRPC_URL=f"127.0.0.1:{grpc}"
        )
        assert up.exit_code(timeout=60) == 1
        assert leftover.is_ready()
    assert f"127.0.0.1:{http} (http)" in up.stderr.read_text()
    assert "Stream tokens with" not in up.output()


def test_gateway_up_gives_up_on_a_tritonserver_that_keeps_exiting(gateway_up: GatewayUp) -> None:
    up = gateway_up(GATEWAY_TRITON_RESTART_LIMIT="1")
    kill_triton(up.triton_pid())
    kill_triton(int(up.wait_for(r"restarted \(pid (\d+)\)").group(1)))
    assert up.exit_code(timeout=60) == 1
    assert "giving up" in up.stderr.read_text()
    assert "restart limit 1" in up.stderr.read_text()
    assert len(re.findall(r"restarted \(pid", up.output())) == 1
