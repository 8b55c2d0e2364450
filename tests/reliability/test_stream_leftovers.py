"""Nothing outlives its stream: however a stream ends, the gateway process is left with the
tasks, timers and file descriptors it had before, and spends no CPU once traffic stops.

Keep-alives every 20 ms make a timer that outlived its stream cost measurable CPU at once.
Each test runs its traffic twice and compares with the state after the first round: pools
(gRPC channels) grow on first use and then stay, which is not a leak. The database pool may
still grow in the second round (its peak depends on how requests interleave), so its
connections are counted apart, against the pool's bound.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.accounting import RawStream, new_account, run_url, wait_for_records
from tests.e2e.sse import stream_run
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
KEEPALIVE = "0.02"
LONG = {"prompt": "Once upon a time", "max_tokens": 1500, "seed": 4}
"""Seed 4 samples 1,189 tokens (about 40 kB of events): still streaming when the client
leaves or stalls, and more than a stalled client's buffers hold."""
SHORT = {"prompt": "hi", "max_tokens": 8}
SQLITE_POOL_SIZE = 5
"""SQLAlchemy's pool for a SQLite file keeps at most 5 idle connections (overflow ones are
closed when returned), so more than 5 at rest is a connection never given back."""


@dataclass(frozen=True)
class ProcessState:
    tasks: int
    timers: int
    fds: tuple[str, ...]
    """Every fd but the database connections' own files."""
    database_connections: int

    def at_most(self, other: ProcessState) -> bool:
        return (
            self.tasks <= other.tasks
            and self.timers <= other.timers
            and len(self.fds) <= len(other.fds)
            and self.database_connections <= SQLITE_POOL_SIZE
        )

    def __str__(self) -> str:
        return (
            f"{self.tasks} tasks, {self.timers} timers, {len(self.fds)} fds,"
            f" {self.database_connections} database connections"
        )

    def new_fds(self, before: ProcessState) -> list[str]:
        return sorted((Counter(self.fds) - Counter(before.fds)).elements())


def port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def open_fds(pid: int) -> list[str]:
    """What each of the process's fds is: a file's path, or a TCP socket's ends and state."""
    tcp = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, status, inode = fields[1], fields[2], fields[3], fields[9]
            tcp[inode] = f"tcp :{port(local)}->:{port(remote)} state {status}"
    described = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        inode = target.removeprefix("socket:[").removesuffix("]")
        described.append(tcp.get(inode, target))
    return sorted(described)


def state(gateway: GatewayProcess) -> ProcessState:
    """The loop's tasks and timers as the gateway reports them, and its open fds from /proc
    (read after the scrape's connection is closed)."""
    text = httpx.get(gateway.metrics_url, timeout=10).text
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    database = gateway.database_url.removeprefix("sqlite+aiosqlite:///")
    fds = open_fds(gateway.process.pid)
    return ProcessState(
        int(samples["gateway_event_loop_tasks"]),
        int(samples["gateway_event_loop_timers"]),
        tuple(fd for fd in fds if not fd.startswith(database)),
        fds.count(database),
    )


def settled(gateway: GatewayProcess, baseline: ProcessState, timeout: float = 15) -> ProcessState:
    """The state once it is back at `baseline`, or as it is after `timeout` seconds (a
    cancelled generation's `stop` to Triton may take a moment)."""
    deadline = time.monotonic() + timeout
    while not (now := state(gateway)).at_most(baseline) and time.monotonic() < deadline:
        time.sleep(0.25)
    return now


def cpu_seconds(gateway: GatewayProcess) -> float:
    fields = Path(f"/proc/{gateway.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def gateway(
    database_factory,  # type: ignore[no-untyped-def]
    triton,  # type: ignore[no-untyped-def]
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    factory = GatewayFactory(
        database_factory, triton, cpu_model_repository, tmp_path_factory.mktemp("leftovers")
    )
    yield factory(
        "sqlite",
        GATEWAY_SSE_KEEPALIVE_SECONDS=KEEPALIVE,
        GATEWAY_SSE_SEND_TIMEOUT_SECONDS="1",
        GATEWAY_SSE_BUFFER_BYTES="4096",
        GATEWAY_LIMIT_CONCURRENT_STREAMS="1000",
        GATEWAY_LIMIT_REQUESTS_PER_MINUTE="100000",
        GATEWAY_LIMIT_TOKENS_PER_MINUTE="100000000",
    )
    for process in factory.started:
        process.stop()


def completed_streams(gateway: GatewayProcess, count: int) -> None:
    account_id, token = new_account(gateway)

    def one(_: int) -> None:
        with gateway.client() as client:
            reply = stream_run(client, run_url(account_id), token, SHORT)
        assert reply.status_code == 200
        assert reply.data[-1] == "[DONE]"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def streams_left_mid_way(gateway: GatewayProcess, count: int) -> None:
    account = new_account(gateway)
    streams = [RawStream(gateway, account, LONG) for _ in range(count)]
    for stream in streams:
        stream.read_events(2)
    for stream in streams:
        stream.socket.close()
    wait_for_records(gateway, count, account_id=account[0])


def streams_left_before_their_first_event(gateway: GatewayProcess, count: int) -> None:
    account = new_account(gateway)
    streams = [RawStream(gateway, account, LONG) for _ in range(count)]
    for stream in streams:
        stream.socket.close()
    wait_for_records(gateway, count, account_id=account[0])


def streams_cut_by_the_send_timeout(gateway: GatewayProcess, count: int) -> None:
    account = new_account(gateway)
    streams = [RawStream(gateway, account, LONG, receive_buffer=2048) for _ in range(count)]
    for stream in streams:
        stream.read_events(1)
    records = wait_for_records(gateway, count, timeout=30, account_id=account[0])
    for stream in streams:
        stream.read_to_end()
    assert {record["status"] for record in records} == {"client_cancelled"}


def assert_leaves_nothing_behind(
    gateway: GatewayProcess, traffic: Callable[[GatewayProcess, int], None], count: int
) -> None:
    traffic(gateway, count)
    time.sleep(1)
    baseline = state(gateway)
    traffic(gateway, count)
    after = settled(gateway, baseline)
    assert after.at_most(baseline), (
        f"{after} after the second round, {baseline} after the first; "
        f"new fds: {after.new_fds(baseline)}"
    )


def test_completed_streams_leave_no_task_timer_or_fd_behind(gateway: GatewayProcess) -> None:
    assert_leaves_nothing_behind(gateway, completed_streams, 40)


def test_streams_the_client_leaves_mid_way_leave_no_task_timer_or_fd_behind(
    gateway: GatewayProcess,
) -> None:
    assert_leaves_nothing_behind(gateway, streams_left_mid_way, 8)


def test_streams_the_client_leaves_before_their_first_event_leave_no_task_timer_or_fd_behind(
    gateway: GatewayProcess,
) -> None:
    assert_leaves_nothing_behind(gateway, streams_left_before_their_first_event, 8)


def test_streams_cut_by_the_send_timeout_leave_no_task_timer_or_fd_behind(
    gateway: GatewayProcess,
) -> None:
    assert_leaves_nothing_behind(gateway, streams_cut_by_the_send_timeout, 4)


def test_the_gateway_spends_no_cpu_idle_after_keepalive_streams(gateway: GatewayProcess) -> None:
    """Were each stream to leave its keepalive timer behind, 50 of them would wake the loop
    2,500 times a second."""
    completed_streams(gateway, 50)
    time.sleep(1)
    before = cpu_seconds(gateway)
    time.sleep(3)
    idle = cpu_seconds(gateway) - before
    assert idle < 0.05, f"{idle:.2f} CPU-seconds in 3 s idle after 50 streams"
