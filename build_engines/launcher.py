"""Start a real `tritonserver` on a model repository, wait for its models, stop it cleanly.

The server is the one shipped in the `nvidia-pytriton` wheel (Triton 2.51, release 24.10),
which runs on a CPU-only machine. Three things make it work outside NVIDIA's container:
its bundled libraries and the interpreter's `libpython` on `LD_LIBRARY_PATH`; a Python
backend folder whose `triton_python_backend_stub` matches the running Python (the wheel ships
one per version); and `PYTHONPATH` naming this environment's site-packages, which the
generated `model.py` files put on `sys.path` (the stub's interpreter is isolated).

    triton-launch --model-repository model_repository
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class TritonLaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class TritonRuntime:
    """Where the wheel's server binary, libraries and Python backend live."""

    server_binary: Path
    library_dir: Path
    python_backend_dir: Path
    stub_binary: Path

    @classmethod
    def from_installed_wheel(cls) -> TritonRuntime:
        spec = importlib.util.find_spec("pytriton")
        if spec is None or spec.origin is None:
            raise TritonLaunchError(
                "tritonserver comes from the nvidia-pytriton wheel: "
                "pip install 'llm-gateway[triton]'"
            )
        package_dir = Path(spec.origin).parent
        server_dir = package_dir / "tritonserver"
        runtime = cls(
            server_binary=server_dir / "bin" / "tritonserver",
            library_dir=package_dir.parent / "nvidia_pytriton.libs",
            python_backend_dir=server_dir / "backends" / "python",
            stub_binary=server_dir
            / "python_backend_stubs"
            / PYTHON_VERSION
            / "triton_python_backend_stub",
        )
        for path in (runtime.server_binary, runtime.python_backend_dir, runtime.stub_binary):
            if not path.exists():
                raise TritonLaunchError(f"the nvidia-pytriton wheel has no {path}")
        return runtime

    def backend_directory(self, cache_dir: Path) -> Path:
        """A backends folder whose Python backend carries the stub for this interpreter.

        Built from links in a cache folder rather than by copying into the installed wheel.
        """
        python_dir = cache_dir / f"backends-py{PYTHON_VERSION}" / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        sources = [*self.python_backend_dir.iterdir(), self.stub_binary]
        for source in sources:
            if source.name == "__pycache__":
                continue
            link = python_dir / source.name
            if not link.exists():
                link.symlink_to(source)
        return python_dir.parent

    def environment(self) -> dict[str, str]:
        library_path = [str(self.library_dir), sysconfig.get_config_var("LIBDIR") or ""]
        site_packages = dict.fromkeys(
            [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        )
        env = dict(os.environ)
        if env.get("LD_LIBRARY_PATH"):
            library_path.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, library_path))
        env["PYTHONPATH"] = os.pathsep.join(site_packages)
        return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class TritonServer:
    """A `tritonserver` process; use as a context manager or call `start()`/`stop()`."""

    model_repository: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    host: str = "127.0.0.1"
    log_path: Path | None = None
    models: Sequence[str] = ()
    extra_args: Sequence[str] = ()
    cache_dir: Path = Path("var") / "triton"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def command(self, runtime: TritonRuntime) -> list[str]:
        command = [
            str(runtime.server_binary),
            f"--model-repository={self.model_repository.resolve()}",
            f"--backend-directory={runtime.backend_directory(self.cache_dir.resolve())}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            "--allow-cpu-metrics=true",
            "--pinned-memory-pool-byte-size=0",
            "--cuda-memory-pool-byte-size=0:0",
            "--strict-readiness=true",
            "--exit-timeout-secs=10",
        ]
        if self.models:
            command.append("--model-control-mode=explicit")
            command += [f"--load-model={model}" for model in self.models]
        return [*command, *self.extra_args]

    def start(self, timeout: float = 120.0) -> TritonServer:
        runtime = TritonRuntime.from_installed_wheel()
        log_path = self.log_path or self.cache_dir / f"tritonserver-{self.http_port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(runtime),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=runtime.environment(),
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise TritonLaunchError(
                    f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(0.2)
        raise TritonLaunchError(f"tritonserver not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def is_ready(self) -> bool:
        try:
            ready_url = f"{self.http_url}/v2/health/ready"
            with urllib.request.urlopen(ready_url, timeout=2) as reply:  # noqa: S310 (http only)
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def restart_if_exited(self, timeout: float = 120.0) -> int | None:
        """Start the server again on the same ports if its process has exited, as Kubernetes
        restarts a crashed pod; its exit code, or None if it was running.

        Triton 24.10 (the wheel's) can segfault when a gRPC cancellation races a request's
        end (fixed upstream in 24.12/25.x, triton-inference-server/server#7840 and #8034).
        The previous log is kept beside the new one.
        """
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        if self.log_path is not None and self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(f".exited-{time.time_ns()}.log"))
        self.start(timeout)
        return code

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def restarted_when_it_exits(server: TritonServer, interval: float = 1.0) -> Iterator[None]:
    """Watch `server` from a thread and restart it whenever its process exits on its own."""
    leaving = threading.Event()

    def watch() -> None:
        while not leaving.wait(interval):
            with contextlib.suppress(TritonLaunchError):
                code = server.restart_if_exited()
                if code is not None:
                    print(f"tritonserver exited ({code}); restarted, log {server.log_path}",
                          file=sys.stderr, flush=True)  # fmt: skip

    watcher = threading.Thread(target=watch, name="tritonserver-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        leaving.set()
        watcher.join()


@contextlib.contextmanager
def running_triton(model_repository: Path, **options: object) -> Iterator[TritonServer]:
    server = TritonServer(model_repository, **options)  # type: ignore[arg-type]
    with server:
        yield server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triton-launch", description=__doc__.split("\n")[0])
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--model", action="append", default=[], help="load only these models")
    parser.add_argument("--log-file", type=Path)
    args = parser.parse_args(argv)
    server = TritonServer(
        args.model_repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        models=args.model,
        log_path=args.log_file,
    )
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    print(
        f"tritonserver ready: http {server.http_url}, grpc {server.grpc_url}, "
        f"metrics {server.metrics_url}, log {server.log_path}",
        flush=True,
    )
    while not stop_requested and server.process is not None and server.process.poll() is None:
        time.sleep(0.5)
    code = server.stop()
    return 0 if stop_requested else (code or 1)


if __name__ == "__main__":
    sys.exit(main())
