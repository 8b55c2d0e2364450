"""Billing is exact: the completion tokens recorded are the tokens the client was sent."""

from __future__ import annotations

import random
import threading

import pytest

from tests.accounting import RawStream, new_account, wait_for_records
from tests.gateway_fixtures import GatewayFactory

pytestmark = pytest.mark.triton
STREAMS = 64


def test_64_concurrent_streams_with_random_disconnects_are_billed_exactly_per_request(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory("postgresql")
    account = new_account(gateway, concurrent_streams=STREAMS)
    rng = random.Random(20261125)
    plans = [
        (rng.randint(20, 120), rng.random() < 0.75, rng.randint(1, 15)) for _ in range(STREAMS)
    ]
    received: dict[str, int] = {}
    failures: list[BaseException] = []

    def client(max_tokens: int, disconnects: bool, after_events: int) -> None:
        try:
            stream = RawStream(
                gateway, account, {"prompt": "Once upon a time", "max_tokens": max_tokens}
            )
            if disconnects:
                stream.read_events(after_events)
                stream.leave()
            else:
                stream.read_to_end()
            received[stream.request_id] = stream.last_event_id
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    threads = [threading.Thread(target=client, args=plan) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    records = {
        str(r["request_id"]): r for r in wait_for_records(gateway, STREAMS, account_id=account[0])
    }
    billed = {request_id: records[request_id]["completion_tokens"] for request_id in received}
    assert billed == received
    statuses = {str(record["status"]) for record in records.values()}
    assert statuses <= {"ok", "client_cancelled"}
    assert "client_cancelled" in statuses
