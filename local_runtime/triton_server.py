"""A real `tritonserver` on a model repository: started, waited for, restarted, stopped.

The server is the one shipped in the `nvidia-pytriton` wheel (Triton 2.51, release 24.10),
which runs on a CPU-only machine. Three things make it work outside NVIDIA's container:
its bundled libraries and the interpreter's `libpython` on `LD_LIBRARY_PATH`; a Python
backend folder whose `triton_python_backend_stub` matches the running Python (the wheel ships
one per version); and `PYTHONPATH` naming this environment's site-packages, which the
generated `model.py` files put on `sys.path` (the stub's interpreter is isolated).

The launched server is tied to this process (see `tether.py`), refuses ports another server
holds, and is only ready once the server answering carries this launch's `--id`.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from local_runtime.ports import free_port, port_is_free
from local_runtime.tether import popen_tethered

logger = logging.getLogger(__name__)
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class TritonLaunchError(RuntimeError):
    pass


class TritonCrashedLoading(TritonLaunchError):
    """The server was killed by a signal before it was ready."""

    def __init__(self, returncode: int, log_tail: str) -> None:
        super().__init__(f"tritonserver exited with {returncode}:\n{log_tail}")
        self.returncode = returncode


class TritonGaveUp(TritonLaunchError):
    """The server kept exiting: restarting it again would only hide the fault."""


@dataclass(frozen=True)
class TritonRuntime:
    """Where the server binary, libraries and backends live: the nvidia-pytriton wheel's
    CPU-only build (Python backend alone), or a full install such as NGC's images."""

    server_binary: Path
    library_dir: Path
    python_backend_dir: Path
    stub_binary: Path
    backends_dir: Path | None = None
    """A full install's backends folder (python, tensorrtllm, …), used as it is."""

    @classmethod
    def from_install(cls, root: Path) -> TritonRuntime:
        """A Triton installed under `root` (`/opt/tritonserver` in the NGC images): its own
        backends, GPU memory pools and metrics."""
        backends = root / "backends"
        runtime = cls(
            server_binary=root / "bin" / "tritonserver",
            library_dir=root / "lib",
            python_backend_dir=backends / "python",
            stub_binary=backends / "python" / "triton_python_backend_stub",
            backends_dir=backends,
        )
        for path in (runtime.server_binary, backends):
            if not path.exists():
                raise TritonLaunchError(f"no Triton installed under {root}: {path} is missing")
        return runtime

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
        A full install's backends folder is used as it is.
        """
        if self.backends_dir is not None:
            return self.backends_dir
        python_dir = cache_dir / f"backends-py{PYTHON_VERSION}" / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        sources = [*self.python_backend_dir.iterdir(), self.stub_binary]
        for source in sources:
            if source.name == "__pycache__":
                continue
            # Another launcher may be making the same links at the same moment.
            with contextlib.suppress(FileExistsError):
                (python_dir / source.name).symlink_to(source)
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


@dataclass
class RestartBackoff:
    """How `TritonServer.restart_if_exited` paces a server that keeps exiting.

    The first exit in `window` seconds restarts at once (a test session or an operator waits
    for nothing); the next waits `base_delay`, each further one twice as long, up to
    `max_delay`; the exit after `limit` restarts in the window gives up.
    """

    limit: int = 5
    window: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 30.0
    exits: collections.deque[float] = field(default_factory=collections.deque, init=False)

    def delay_after_exit(self, describe: str) -> float:
        """Record an exit; the pause before the restart, or `TritonGaveUp`."""
        now = time.monotonic()
        while self.exits and self.exits[0] <= now - self.window:
            self.exits.popleft()
        self.exits.append(now)
        earlier = len(self.exits) - 1
        if earlier >= self.limit:
            raise TritonGaveUp(
                f"giving up: tritonserver exited {len(self.exits)} times in "
                f"{self.window:.0f} s (restart limit {self.limit}; {describe})"
            )
        return 0.0 if earlier == 0 else min(self.max_delay, self.base_delay * 2 ** (earlier - 1))


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
    restarts: RestartBackoff = field(default_factory=RestartBackoff)
    runtime: TritonRuntime | None = None
    """Default: the nvidia-pytriton wheel's server."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    server_id: str = field(default="", init=False)
    """Unique per start (`--id`): readiness checks that the server answering is this one."""

    @classmethod
    def on_free_ports(cls, model_repository: Path, **options: Any) -> TritonServer:
        """A server on three ports free now: for tests and benchmarks beside other servers."""
        return cls(
            model_repository,
            http_port=free_port(),
            grpc_port=free_port(),
            metrics_port=free_port(),
            **options,
        )

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def ports(self) -> dict[str, int]:
        return {"http": self.http_port, "grpc": self.grpc_port, "metrics": self.metrics_port}

    def ensure_ports_free(self) -> None:
        """Refuse ports something already listens on: a tritonserver left running there
        would answer for this one."""
        taken = [f"{self.host}:{port} ({name})" for name, port in self.ports.items()
                 if not port_is_free(self.host, port)]  # fmt: skip
        if taken:
            raise TritonLaunchError(
                f"tritonserver cannot listen on {', '.join(taken)}: another server (a "
                "tritonserver still running?) holds the port; stop it or choose other ports"
            )

    def command(self, runtime: TritonRuntime) -> list[str]:
        command = [
            str(runtime.server_binary),
            f"--id={self.server_id}",
            f"--model-repository={self.model_repository.resolve()}",
            f"--backend-directory={runtime.backend_directory(self.cache_dir.resolve())}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--allow-cpu-metrics=true",
            "--strict-readiness=true",
            "--exit-timeout-secs=10",
        ]
        if runtime.backends_dir is None:  # the wheel's server has no GPU support
            command += [
                "--allow-gpu-metrics=false",
                "--pinned-memory-pool-byte-size=0",
                "--cuda-memory-pool-byte-size=0:0",
            ]
        if self.models:
            command.append("--model-control-mode=explicit")
            command += [f"--load-model={model}" for model in self.models]
        return [*command, *self.extra_args]

    def start(self, timeout: float = 120.0, abandon: threading.Event | None = None) -> TritonServer:
        """Start the server and wait until it is ready; it ends when this process ends.

        A server killed by a signal while loading its models is started once more, its log
        kept: Triton 24.10's Python backend (the wheel's) can abort on a loaded machine with
        `boost::interprocess::lock_exception` while it starts model instances. A second
        crash, or any other failure, is raised. `abandon`, once set, stops the wait.
        """
        try:
            return self._start_once(timeout, abandon)
        except TritonCrashedLoading as crash:
            kept = self._keep_log()
            logger.warning(
                "tritonserver exited with %s while loading, log %s; starting it once more",
                crash.returncode,
                kept,
            )
            return self._start_once(timeout, abandon)

    def _keep_log(self) -> Path | None:
        """Move the log aside (…exited-<ns>.log) so that the next start writes a new one."""
        if self.log_path is None or not self.log_path.exists():
            return None
        kept = self.log_path.with_suffix(f".exited-{time.time_ns()}.log")
        self.log_path.replace(kept)
        return kept

    def _start_once(self, timeout: float, abandon: threading.Event | None) -> TritonServer:
        self.ensure_ports_free()
        runtime = self.runtime or TritonRuntime.from_installed_wheel()
        log_path = self.log_path or self.cache_dir / f"tritonserver-{self.http_port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.server_id = f"llm-gateway-{os.getpid()}-{secrets.token_hex(6)}"
        with log_path.open("wb") as log:
            self.process = popen_tethered(
                self.command(runtime),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=runtime.environment(),
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout, abandon)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float, abandon: threading.Event | None = None) -> None:
        """Until this server (its `--id`, not whatever answers on its port) is ready."""
        abandon = abandon or threading.Event()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                if code < 0:
                    raise TritonCrashedLoading(code, self.log_tail())
                raise TritonLaunchError(f"tritonserver exited with {code}:\n{self.log_tail()}")
            name = self.answering_server()
            if name not in (None, self.server_id):
                raise TritonLaunchError(
                    f"port {self.http_port} answers as tritonserver {name!r}, not the one just "
                    f"started ({self.server_id}): another server took the port"
                )
            if name is not None and self._models_ready():
                return
            if abandon.wait(0.2):
                raise TritonLaunchError("tritonserver start abandoned")
        raise TritonLaunchError(f"tritonserver not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def answering_server(self) -> str | None:
        """The name (`--id`) of the Triton answering on the HTTP port; None if none answers."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2", timeout=2) as reply:  # noqa: S310
                return str(json.load(reply).get("name", ""))
        except (urllib.error.URLError, OSError, ValueError, AttributeError):
            return None

    def is_ready(self) -> bool:
        """Whether this server (not another on its port) has every model ready."""
        return self.answering_server() == self.server_id and self._models_ready()

    def _models_ready(self) -> bool:
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
        """SIGTERM (Triton drains in-flight requests), then SIGKILL after `timeout`; then
        whatever is left of its process group (see `_kill_leftovers`)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._kill_leftovers()
        return self.process.returncode

    def _kill_leftovers(self) -> None:
        """Kill the server's process group once the server has exited: Python-backend stubs
        that were still loading when tritonserver died stay alive without it (seen after
        a crash while loading). The server leads its own group (`start_new_session`)."""
        if self.process is not None and self.process.poll() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def restart_if_exited(
        self, timeout: float = 120.0, abandon: threading.Event | None = None
    ) -> int | None:
        """Start the server again on the same ports if its process has exited, as Kubernetes
        restarts a crashed pod; its exit code, or None if it was running (or `abandon` was
        set before it could restart).

        Triton 24.10 (the wheel's) can segfault when a gRPC cancellation races a request's
        end (fixed upstream in 24.12/25.x, triton-inference-server/server#7840 and #8034).
        Repeated exits back off, then raise `TritonGaveUp` (see `RestartBackoff`). The
        previous log is kept beside the new one.
        """
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        delay = self.restarts.delay_after_exit(f"last exit {code}, log {self.log_path}")
        abandon = abandon or threading.Event()
        if abandon.wait(delay):
            return None
        self._kill_leftovers()
        self._keep_log()
        self.start(timeout, abandon)
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
def restarted_when_it_exits(
    server: TritonServer,
    interval: float = 1.0,
    on_give_up: Callable[[TritonGaveUp], object] = lambda error: logger.error("%s", error),
) -> Iterator[None]:
    """Watch `server` from a thread and restart it whenever its process exits on its own;
    when the restarts give up, the watch ends and `on_give_up` hears why."""
    leaving = threading.Event()

    def watch() -> None:
        while not leaving.wait(interval):
            try:
                code = server.restart_if_exited(abandon=leaving)
            except TritonGaveUp as error:
                on_give_up(error)
                return
            except TritonLaunchError as error:
                if not leaving.is_set():
                    logger.error("tritonserver restart failed: %s", error)
                continue
            if code is not None:
                logger.warning(
                    "tritonserver exited (%s); restarted (pid %s), log %s",
                    code,
                    server.pid,
                    server.log_path,
                )

    watcher = threading.Thread(target=watch, name="tritonserver-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        leaving.set()
        watcher.join()
