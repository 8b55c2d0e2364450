"""A client that stops reading is cut off after the send timeout, billed what it was sent,
and cannot make the gateway buffer without bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.accounting import FP16, RawStream, new_account, run, wait_for_records
from tests.gateway_fixtures import GatewayFactory, GatewayProcess

pytestmark = pytest.mark.triton
# Seed 7 generates 1,592 tokens (about 50 kB of events), far more than the buffers hold.
LONGEST = {"prompt": "\x01" * 2000, "raw": True, "max_tokens": 2500, "seed": 7}


def resident_kib(gateway: GatewayProcess) -> int:
    status = Path(f"/proc/{gateway.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


class StalledReader(RawStream):
    """Takes the first event, then reads nothing: a tiny receive window fills at once."""

    def __init__(self, gateway: GatewayProcess, account: tuple[str, str]) -> None:
        super().__init__(gateway, account, LONGEST, model=FP16, receive_buffer=2048)
        self.read_events(1)


def test_a_reader_that_stops_reading_is_dropped_and_billed_what_it_was_sent(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(
        "sqlite", GATEWAY_SSE_SEND_TIMEOUT_SECONDS="1", GATEWAY_SSE_BUFFER_BYTES="4096"
    )
    account = new_account(gateway)
    reader = StalledReader(gateway, account)
    [record] = wait_for_records(gateway, 1, timeout=30, account_id=account[0])
    reader.read_to_end()
    assert record["status"] == "client_cancelled"
    assert 0 < int(record["completion_tokens"]) < 2500
    assert reader.last_event_id <= int(record["completion_tokens"])


def test_stalled_readers_do_not_grow_the_gateways_memory_without_bound(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(
        "sqlite", GATEWAY_SSE_SEND_TIMEOUT_SECONDS="2", GATEWAY_SSE_BUFFER_BYTES="4096"
    )
    account = new_account(gateway)
    run(gateway, account, {"prompt": "warm up", "max_tokens": 8})
    idle = resident_kib(gateway)
    readers = [StalledReader(gateway, account) for _ in range(16)]
    wait_for_records(gateway, 17, timeout=60, account_id=account[0])
    peak = resident_kib(gateway)
    served = run(gateway, account, {"prompt": "still there?", "max_tokens": 8})
    for reader in readers:
        reader.socket.close()
    assert served.status_code == 200
    assert peak - idle < 32 * 1024, f"{(peak - idle) / 1024:.1f} MiB for 16 stalled readers"
