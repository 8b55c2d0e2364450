"""Clients abandoning runs in every way, many at once: tritonserver lives through it.

The wheel's Triton 24.10 mishandles a gRPC cancellation that races a request's final
response (server #7840, #8078); the gateway ends abandoned generations with TensorRT-LLM's
`stop` instead, so no gRPC cancellation reaches a request the twin is answering.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_runtime.triton_server import TritonServer
from tests.accounting import RawStream, abandon_run, new_account, twin_metric, wait_until_idle
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
STORM_SECONDS = 12.0
CLIENTS = 6
FALLBACK_SHARE = 0.1
"""At most this share of abandoned runs may end by the fallback gRPC cancellation. Cancelling
every abandoned call, as before, was 25%; with stop first, fresh-clone runs saw 0.4% and
2.6%, in bursts when the 2 cores were saturated (the twin applies a stop between steps)."""
UNLIMITED = {"requests_per_minute": 0, "tokens_per_minute": 0, "concurrent_streams": 0}
Account = tuple[str, str]


@pytest.fixture
def storm_gateway(
    database_factory,  # type: ignore[no-untyped-def]
    own_triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path: Path,
) -> Iterator[GatewayProcess]:
    """A gateway in front of `own_triton` (and not of the session's Triton)."""
    factory = GatewayFactory(database_factory, own_triton, cpu_model_repository, tmp_path)
    yield factory("sqlite")
    for process in factory.started:
        process.stop()


def body(rng: random.Random, max_tokens: int) -> dict[str, object]:
    return {"prompt": "Tell me a story", "max_tokens": max_tokens, "seed": rng.randint(1, 10**6)}


def streamed_left_before_its_first_event(
    gateway: GatewayProcess, account: Account, rng: random.Random
) -> None:
    stream = RawStream(gateway, account, body(rng, 200))
    time.sleep(rng.uniform(0, 0.02))
    stream.socket.close()


def streamed_left_after_its_first_event(
    gateway: GatewayProcess, account: Account, rng: random.Random
) -> None:
    stream = RawStream(gateway, account, body(rng, 200))
    stream.read_events(1)
    stream.socket.close()


def streamed_left_mid_way(gateway: GatewayProcess, account: Account, rng: random.Random) -> None:
    stream = RawStream(gateway, account, body(rng, 400))
    stream.read_events(rng.randint(2, 40))
    stream.socket.close()


def streamed_left_as_it_ends(gateway: GatewayProcess, account: Account, rng: random.Random) -> None:
    """Within a token of the generation's own end: the leaving races the final response."""
    max_tokens = rng.randint(2, 4)
    stream = RawStream(gateway, account, body(rng, max_tokens))
    stream.read_events(max_tokens - 1)
    time.sleep(rng.uniform(0, 0.005))
    stream.socket.close()


def non_streamed_left_early(gateway: GatewayProcess, account: Account, rng: random.Random) -> None:
    abandon_run(gateway, account, body(rng, 200), after_seconds=rng.uniform(0, 0.1))


def non_streamed_left_as_it_ends(
    gateway: GatewayProcess, account: Account, rng: random.Random
) -> None:
    """Eight tokens take about 20 ms at 400 tokens/s: the client leaves around the answer."""
    abandon_run(gateway, account, body(rng, 8), after_seconds=rng.uniform(0, 0.06))


WAYS_TO_LEAVE: list[Callable[[GatewayProcess, Account, random.Random], None]] = [
    streamed_left_before_its_first_event,
    streamed_left_after_its_first_event,
    streamed_left_mid_way,
    streamed_left_as_it_ends,
    non_streamed_left_early,
    non_streamed_left_as_it_ends,
]


def storm(gateway: GatewayProcess, account: Account, seconds: float) -> Counter[str]:
    """`CLIENTS` threads abandoning runs, each in a random way, for `seconds`."""
    left: Counter[str] = Counter()
    stuck: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            leave = rng.choice(WAYS_TO_LEAVE)
            try:
                leave(gateway, account, rng)
            except OSError:  # the gateway may reset a connection it has given up on
                continue
            except AssertionError as error:  # no events: the backend stopped answering
                stuck.append(f"{leave.__name__}: {error}")
                return
            with lock:
                left[leave.__name__] += 1

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not stuck, stuck
    return left


def test_tritonserver_lives_through_a_storm_of_abandoned_runs(
    storm_gateway: GatewayProcess, own_triton: TritonServer
) -> None:
    assert own_triton.process is not None
    pid = own_triton.process.pid
    account = new_account(storm_gateway, **UNLIMITED)

    left = storm(storm_gateway, account, STORM_SECONDS)

    assert set(left) == {leave.__name__ for leave in WAYS_TO_LEAVE}
    assert sum(left.values()) >= 100, left
    assert wait_until_idle(own_triton, 10) == 0
    assert own_triton.process.poll() is None, own_triton.log_tail()
    assert own_triton.process.pid == pid
    assert own_triton.is_ready()
    # Abandoned generations end by their stop or by themselves. A gRPC cancellation is only
    # the gateway's fallback for a stream still open 5 s after its stop (on 2 busy cores an
    # end can be that late): a few, where cancelling every abandoned call was a quarter of them.
    log = storm_gateway.log_path.read_text()
    assert "Exception in ASGI application" not in log  # e.g. a client gone before the body
    calls_cancelled = log.count("cancelled its gRPC call")
    assert calls_cancelled <= FALLBACK_SHARE * sum(left.values()), (calls_cancelled, left)
    cancelled_in_twin = twin_metric(own_triton, "cpu_twin_requests_total", outcome="cancelled")
    assert cancelled_in_twin <= calls_cancelled
