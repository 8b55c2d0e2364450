"""`TritonServer`'s own guarantees: readiness is its own server's, a server started from a
passing thread outlives the thread, busy ports are refused, a crash while loading is started
once more, and restarts back off then stop."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from local_runtime.ports import free_port, port_is_free
from local_runtime.triton_server import (
    RestartBackoff,
    TritonGaveUp,
    TritonLaunchError,
    TritonServer,
)


def server_on_free_ports(repository: Path, log_dir: Path) -> TritonServer:
    return TritonServer.on_free_ports(
        repository,
        log_path=log_dir / f"tritonserver-{time.monotonic_ns()}.log",
    )


@pytest.fixture
def empty_repository(tmp_path: Path) -> Path:
    """No models: a tritonserver that is ready in about a second."""
    repository = tmp_path / "model_repository"
    repository.mkdir()
    return repository


CRASHING_MODEL = """\
import os, pathlib, signal


class TritonPythonModel:
    def initialize(self, args):
        crashes_left = pathlib.Path(__file__).with_name("crashes_left")
        left = int(crashes_left.read_text())
        if left > 0:
            crashes_left.write_text(str(left - 1))
            os.kill(os.getppid(), signal.SIGABRT)  # the stub's parent: tritonserver

    def execute(self, requests):
        return []
"""
CRASHING_MODEL_CONFIG = """\
backend: "python"
max_batch_size: 0
input [{ name: "X", data_type: TYPE_FP32, dims: [ 1 ] }]
output [{ name: "Y", data_type: TYPE_FP32, dims: [ 1 ] }]
instance_group [{ kind: KIND_CPU, count: 1 }]
"""


def repository_whose_model_kills_triton(tmp_path: Path, starts: int) -> Path:
    """A model whose loading kills tritonserver with SIGABRT on its first `starts` loads, as
    Triton 24.10's Python backend sometimes aborts on a loaded machine."""
    repository = tmp_path / "model_repository"
    (repository / "crasher" / "1").mkdir(parents=True)
    (repository / "crasher" / "config.pbtxt").write_text(CRASHING_MODEL_CONFIG)
    (repository / "crasher" / "1" / "model.py").write_text(CRASHING_MODEL)
    (repository / "crasher" / "1" / "crashes_left").write_text(str(starts))
    return repository


def processes_serving(repository: Path, within: float = 5.0) -> list[int]:
    """Live processes whose command line names `repository` (tritonserver and its stubs)
    once none are left, or those still there after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if str(repository).encode() in command and state not in ("Z", "X"):
                found.append(int(entry.name))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.triton
def test_a_tritonserver_killed_while_loading_is_started_once_more_and_its_log_kept(
    tmp_path: Path,
) -> None:
    server = server_on_free_ports(repository_whose_model_kills_triton(tmp_path, 1), tmp_path)
    with server:
        assert server.is_ready()
    assert [log.name for log in tmp_path.glob("*.exited-*.log")] != []


@pytest.mark.triton
def test_a_tritonserver_killed_twice_while_loading_is_an_error(tmp_path: Path) -> None:
    server = server_on_free_ports(repository_whose_model_kills_triton(tmp_path, 2), tmp_path)
    with pytest.raises(TritonLaunchError, match="exited with -6"):
        server.start()


@pytest.mark.triton
def test_a_tritonserver_killed_while_loading_leaves_no_stub_behind(tmp_path: Path) -> None:
    repository = repository_whose_model_kills_triton(tmp_path, 2)
    with pytest.raises(TritonLaunchError):
        server_on_free_ports(repository, tmp_path).start()
    assert processes_serving(repository) == []


@pytest.mark.triton
def test_readiness_is_only_the_launched_servers_own(empty_repository: Path, tmp_path: Path) -> None:
    with server_on_free_ports(empty_repository, tmp_path) as running:
        same_ports = TritonServer(
            empty_repository,
            http_port=running.http_port,
            grpc_port=running.grpc_port,
            metrics_port=running.metrics_port,
        )
        assert running.is_ready()
        assert not same_ports.is_ready()


@pytest.mark.triton
def test_starting_on_ports_a_tritonserver_holds_is_refused(
    empty_repository: Path, tmp_path: Path
) -> None:
    with server_on_free_ports(empty_repository, tmp_path) as running:
        second = TritonServer(
            empty_repository,
            http_port=free_port(),
            grpc_port=running.grpc_port,
            metrics_port=free_port(),
            log_path=tmp_path / "second.log",
        )
        with pytest.raises(TritonLaunchError, match=rf"127\.0\.0\.1:{running.grpc_port} \(grpc\)"):
            second.start()
        assert second.process is None
        assert running.is_ready()


@pytest.mark.triton
def test_a_tritonserver_started_from_a_thread_outlives_the_thread(
    empty_repository: Path, tmp_path: Path
) -> None:
    """The parent-death signal follows the forking thread, not the process: a restart from a
    watcher thread must not end when that thread does."""
    server = server_on_free_ports(empty_repository, tmp_path)
    starter = threading.Thread(target=server.start)
    starter.start()
    starter.join()
    try:
        time.sleep(1.0)
        assert server.process is not None
        assert server.process.poll() is None
        assert server.is_ready()
    finally:
        server.stop()


def test_a_port_left_in_time_wait_by_a_closed_server_is_free() -> None:
    """A crashed Triton leaves its closed connections in TIME_WAIT; its restart must not fail."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: it holds the TIME_WAIT
    client.close()
    assert port_is_free("127.0.0.1", port)


def test_a_port_something_listens_on_is_not_free() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert not port_is_free("127.0.0.1", listener.getsockname()[1])


def test_restarts_wait_nothing_first_then_twice_as_long_each_time_up_to_the_cap() -> None:
    backoff = RestartBackoff(limit=5, window=60, base_delay=1.0, max_delay=3.0)
    delays = [backoff.delay_after_exit("exit") for _ in range(5)]
    assert delays == [0.0, 1.0, 2.0, 3.0, 3.0]


def test_the_exit_after_the_restart_limit_gives_up_with_the_reason() -> None:
    backoff = RestartBackoff(limit=2, window=60)
    backoff.delay_after_exit("first")
    backoff.delay_after_exit("second")
    with pytest.raises(TritonGaveUp, match=r"exited 3 times in 60 s \(restart limit 2; exit -9"):
        backoff.delay_after_exit("exit -9")


def test_exits_older_than_the_window_no_longer_count() -> None:
    backoff = RestartBackoff(limit=1, window=0.2)
    backoff.delay_after_exit("long ago")
    time.sleep(0.3)
    assert backoff.delay_after_exit("now") == 0.0
