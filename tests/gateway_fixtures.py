"""A real gateway process over real sockets, on SQLite and on PostgreSQL, in front of the
session's real tritonserver."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from local_runtime.ports import free_port
from local_runtime.triton_server import TritonServer

POSTGRES_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789"


@dataclass
class GatewayProcess:
    base_url: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def metrics_url(self) -> str:
        """`/metrics`, served on its own port (`GATEWAY_METRICS_PORT`)."""
        return f"http://127.0.0.1:{self.env['GATEWAY_METRICS_PORT']}/metrics"

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60)

    def create_account(self, name: str | None = None) -> str:
        with self.client() as client:
            reply = client.post(
                "/admin/v1/accounts",
                json={"name": name or f"acct-{uuid.uuid4().hex[:12]}"},
                headers=self.admin_headers,
            )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["result"]["id"])

    def create_token(self, account_id: str, **fields: object) -> dict[str, object]:
        with self.client() as client:
            reply = client.post(
                f"/admin/v1/accounts/{account_id}/tokens",
                json={"name": "test", **fields},
                headers=self.admin_headers,
            )
        assert reply.status_code == 201, reply.text
        return reply.json()["result"]  # type: ignore[no-any-return]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


BLOCKING_IMPORTS = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "from gateway.cli import main\n"
    "sys.exit(main(sys.argv[2:]))"
)


def gateway_command(*arguments: str, blocked_packages: tuple[str, ...] = ()) -> list[str]:
    """`python -m gateway ARGUMENTS`, in a process where any import of `blocked_packages`
    fails (as if they were not installed)."""
    if not blocked_packages:
        return [sys.executable, "-m", "gateway", *arguments]
    return [sys.executable, "-c", BLOCKING_IMPORTS, ",".join(blocked_packages), *arguments]


def start_gateway(
    env: dict[str, str], log_path: Path, *, blocked_packages: tuple[str, ...] = ()
) -> GatewayProcess:
    """A gateway on a database already at the schema's head (see `DatabaseFactory`), in a
    process where any import of `blocked_packages` fails."""
    port = free_port()
    environment = {
        **os.environ,
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_USAGE_JOURNAL_DIR": str(log_path.parent / "usage-journal"),
        "GATEWAY_METRICS_PORT": str(free_port()),
        # The suites send many bad tokens from one address on purpose: counted, not throttled
        # (tests/e2e/test_auth_failures.py turns the throttle on).
        "GATEWAY_AUTH_FAILURES_PER_MINUTE": "0",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            gateway_command("serve", "--port", str(port), blocked_packages=blocked_packages),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gateway = GatewayProcess(
        f"http://127.0.0.1:{port}",
        environment.get("DATABASE_URL", ""),
        environment,
        process,
        log_path,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{gateway.base_url}/healthz", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"gateway did not start:\n{log_path.read_text()}")


async def _postgres(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def migrate(database_url: str, *args: str) -> None:
    """`gateway migrate [args]` on `database_url`: the real CLI, as an operator runs it."""
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        timeout=120,
    )


class DatabaseFactory:
    """Makes fresh databases at the schema's head: `make("sqlite")` or `make("postgresql")`
    → URL; `migrated=False` makes an empty one.

    Each is a copy of a template that `gateway migrate` brought to the head once per
    session (a file copy; PostgreSQL's `CREATE DATABASE … TEMPLATE`), which spares every
    gateway a test starts its own migration run.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._sqlite_template: Path | None = None
        self._postgres_template: str | None = None
        self.created: list[str] = []

    def __call__(self, backend: str, *, migrated: bool = True) -> str:
        if backend == "sqlite":
            path = self._directory / f"sqlite-{uuid.uuid4().hex[:12]}" / "gateway.db"
            path.parent.mkdir()
            if migrated:
                shutil.copyfile(self._migrated_sqlite(), path)
            return f"sqlite+aiosqlite:///{path}"
        name = f"gw_test_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{self._migrated_postgres()}"' if migrated else ""
        asyncio.run(_postgres(f'CREATE DATABASE "{name}"{template}'))
        self.created.append(name)
        return postgres_url(name)

    def _migrated_sqlite(self) -> Path:
        if self._sqlite_template is None:
            template = self._directory / "sqlite-template" / "gateway.db"
            template.parent.mkdir()
            migrate(f"sqlite+aiosqlite:///{template}")
            self._sqlite_template = template
        return self._sqlite_template

    def _migrated_postgres(self) -> str:
        if self._postgres_template is None:
            name = f"gw_template_{uuid.uuid4().hex[:12]}"
            asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            migrate(postgres_url(name))
            self._postgres_template = name
        return self._postgres_template


def postgres_url(database: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    make = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield make
    for name in reversed(make.created):
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


DATABASES = ("sqlite", "postgresql")
SHARED_DATABASE = "postgresql"
"""The shared gateway's database, production's; a module marked `each_database` (its subject
is what the database stores: migrations, accounts and tokens, usage records, limits) runs
its tests on both."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A module with a `gateway` fixture of its own has chosen its database.
    if "gateway" in metafunc.fixturenames and not hasattr(metafunc.module, "gateway"):
        each = metafunc.definition.get_closest_marker("each_database") is not None
        backends = DATABASES if each else (SHARED_DATABASE,)
        metafunc.parametrize("gateway", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def shared_gateways(
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], GatewayProcess]]:
    """The session's gateway on a database, started when a test first asks for it. (pytest
    keeps one value of a parametrized fixture at a time: a parametrized gateway would be
    restarted at every switch of database.)"""
    started: dict[str, GatewayProcess] = {}

    def on(backend: str) -> GatewayProcess:
        if backend not in started:
            started[backend] = start_gateway(
                {
                    "DATABASE_URL": database_factory(backend),
                    "TRITON_GRPC_URL": triton.grpc_url,
                    "GATEWAY_MODEL_REPOSITORY": str(cpu_model_repository),
                    "GATEWAY_MAX_BODY_BYTES": str(256 * 1024),
                    # Generous defaults: the suites share accounts; limits are tested per account.
                    "GATEWAY_LIMIT_REQUESTS_PER_MINUTE": "100000",
                    "GATEWAY_LIMIT_TOKENS_PER_MINUTE": "100000000",
                    "GATEWAY_LIMIT_CONCURRENT_STREAMS": "1000",
                },
                tmp_path_factory.mktemp(f"gateway-{backend}") / "gateway.log",
            )
        return started[backend]

    yield on
    for process in started.values():
        process.stop()


@pytest.fixture(scope="session")
def gateway(
    request: pytest.FixtureRequest, shared_gateways: Callable[[str], GatewayProcess]
) -> GatewayProcess:
    """The session's gateway on `request.param`'s database."""
    return shared_gateways(request.param)


@pytest.fixture(scope="session")
def smollm2_gateway(
    database_factory: DatabaseFactory,
    smollm2_triton: TritonServer,
    smollm2_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway on the embedded default: the twins running SmolLM2-135M-Instruct."""
    process = start_gateway(
        {
            "DATABASE_URL": database_factory("sqlite"),
            "TRITON_GRPC_URL": smollm2_triton.grpc_url,
            "GATEWAY_MODEL_REPOSITORY": str(smollm2_model_repository),
        },
        tmp_path_factory.mktemp("smollm2-gateway") / "gateway.log",
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gateway_without_backend(
    database_factory: DatabaseFactory,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A module's gateway with nothing listening at its Triton address: for what it answers
    before a run would reach the backend (no Triton is started for it)."""
    process = start_gateway(
        {
            "DATABASE_URL": database_factory("sqlite"),
            "TRITON_GRPC_URL": f"127.0.0.1:{free_port()}",
            "GATEWAY_MODEL_REPOSITORY": str(cpu_model_repository),
        },
        tmp_path_factory.mktemp("gateway-without-backend") / "gateway.log",
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def account(gateway: GatewayProcess) -> tuple[str, str]:
    """(account id, API token) of a fresh account on this gateway."""
    account_id = gateway.create_account()
    return account_id, str(gateway.create_token(account_id)["token"])


class GatewayFactory:
    """Starts gateways with their own settings (and their own database unless given one)."""

    def __init__(
        self,
        database_factory: DatabaseFactory,
        triton: TritonServer,
        repository: Path,
        directory: Path,
    ) -> None:
        self._database_factory = database_factory
        self._triton = triton
        self._repository = repository
        self._directory = directory
        self.started: list[GatewayProcess] = []

    def __call__(
        self,
        backend: str = "sqlite",
        *,
        database_url: str | None = None,
        blocked_packages: tuple[str, ...] = (),
        **env: str,
    ) -> GatewayProcess:
        name = f"gateway-{len(self.started)}"
        (self._directory / name).mkdir()
        process = start_gateway(
            {
                "DATABASE_URL": database_url or self._database_factory(backend),
                "TRITON_GRPC_URL": self._triton.grpc_url,
                "GATEWAY_MODEL_REPOSITORY": str(self._repository),
                "GATEWAY_USAGE_FLUSH_INTERVAL_SECONDS": "0.2",
                **env,
            },
            self._directory / name / "gateway.log",
            blocked_packages=blocked_packages,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


@pytest.fixture
def gateway_factory(
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path: Path,
) -> Iterator[GatewayFactory]:
    factory = GatewayFactory(database_factory, triton, cpu_model_repository, tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_gateway_factory(
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayFactory]:
    """`gateway_factory` for gateways that a module's tests share (one start, not one each)."""
    directory = tmp_path_factory.mktemp("module-gateways")
    factory = GatewayFactory(database_factory, triton, cpu_model_repository, directory)
    yield factory
    factory.stop_all()
