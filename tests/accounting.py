"""Client-side helpers of the metering and limits suites: runs, usage records, limits."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import httpx
from prometheus_client.parser import text_string_to_metric_families

from local_runtime.triton_server import TritonServer
from tests.e2e.sse import parse_events_with_ids
from tests.gateway_fixtures import GatewayProcess

INT8 = "@twin/random/llama-2-7b-chat-int8"
FP16 = "@twin/random/llama-2-7b-chat-fp16"


def run_url(account_id: str, model: str = INT8) -> str:
    return f"/client/v4/accounts/{account_id}/ai/run/{model}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_account(gateway: GatewayProcess, **limits: int | None) -> tuple[str, str]:
    """A fresh account (with its own limits, if given) and one of its tokens."""
    account_id = gateway.create_account()
    if limits:
        set_limits(gateway, account_id, **limits)
    return account_id, str(gateway.create_token(account_id)["token"])


def set_limits(gateway: GatewayProcess, account_id: str, **limits: int | None) -> None:
    with gateway.client() as client:
        reply = client.put(
            f"/admin/v1/accounts/{account_id}/limits", json=limits, headers=gateway.admin_headers
        )
    assert reply.status_code == 200, reply.text


def run(
    gateway: GatewayProcess,
    account: tuple[str, str],
    body: dict[str, object],
    model: str = INT8,
) -> httpx.Response:
    account_id, token = account
    with gateway.client() as client:
        return client.post(run_url(account_id, model), json=body, headers=bearer(token))


def usage_records(gateway: GatewayProcess, **params: str) -> list[dict[str, object]]:
    with gateway.client() as client:
        reply = client.get(
            "/admin/v1/usage/records",
            params={"per_page": "1000", **params},
            headers=gateway.admin_headers,
        )
    assert reply.status_code == 200, reply.text
    return reply.json()["result"]  # type: ignore[no-any-return]


def wait_for_records(
    gateway: GatewayProcess, count: int, timeout: float = 20, **params: str
) -> list[dict[str, object]]:
    """The records matching `params` once there are `count` of them (they arrive in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        records = usage_records(gateway, **params)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


LONG_FP16_RUN = {"prompt": "\x01" * 3000, "raw": True, "max_tokens": 2500, "seed": 1}
"""A long generation (a full context; seed 1 samples 1,799 tokens before the end token, ~5 s
here), so that even on a loaded machine the twin is still generating when the client goes
away. Without a seed, some runs sampled the end token within a few tokens."""


def abandon_run(
    gateway: GatewayProcess,
    account: tuple[str, str],
    body: dict[str, object],
    model: str = INT8,
    after_seconds: float = 0.5,
) -> None:
    """A non-streamed run whose client hangs up after `after_seconds`, before its answer."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    payload = json.dumps({**body, "stream": False}).encode()
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            f"POST {run_url(account[0], model)} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {account[1]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        time.sleep(after_seconds)


class RawStream:
    """A streaming run over a bare socket, so that the test decides how the client leaves."""

    def __init__(self, gateway: GatewayProcess, account: tuple[str, str], body: dict[str, object],
                 model: str = INT8, receive_buffer: int | None = None) -> None:  # fmt: skip
        host, port = gateway.base_url.removeprefix("http://").split(":")
        account_id, token = account
        payload = json.dumps({**body, "stream": True}).encode()
        self.socket = socket.socket()
        if receive_buffer is not None:  # before connecting, so that it sets the TCP window
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.socket.settimeout(60)
        self.socket.connect((host, int(port)))
        self.socket.sendall(
            f"POST {run_url(account_id, model)} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        self.received = b""

    @property
    def head(self) -> str:
        return self.received.partition(b"\r\n\r\n")[0].decode()

    @property
    def request_id(self) -> str:
        for line in self.head.split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "x-request-id":
                return value.strip()
        raise AssertionError(f"no x-request-id in {self.head!r}")

    @property
    def events(self) -> list[tuple[str, int | None]]:
        """(`data:`, `id:`) of the complete events received."""
        body = self.received.partition(b"\r\n\r\n")[2]
        if "transfer-encoding: chunked" in self.head.lower():
            body = _dechunk(body)
        return parse_events_with_ids(body)

    @property
    def last_event_id(self) -> int:
        """Completion tokens in the complete events received (the last `id:`)."""
        return max((i for _, i in self.events if i is not None), default=0)

    def read_events(self, count: int, timeout: float = 60) -> None:
        """Until `count` events (or the end) arrived; keep-alives alone do not count, so a
        stalled backend fails here instead of hanging the test."""
        deadline = time.monotonic() + timeout
        while self.received.count(b"\nid: ") < count and b"[DONE]" not in self.received:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"fewer than {count} events in {timeout:.0f} s: ...{self.received[-200:]!r}"
                )
            chunk = self.socket.recv(65536)
            if not chunk:
                return
            self.received += chunk

    def leave(self) -> None:
        """Half-close, then read what the gateway had already sent, as a client that hangs up
        would have received it."""
        self.socket.shutdown(socket.SHUT_WR)
        while chunk := self.socket.recv(65536):
            self.received += chunk
        self.socket.close()

    def read_to_end(self) -> None:
        while b"[DONE]" not in self.received:
            chunk = self.socket.recv(65536)
            if not chunk:
                break
            self.received += chunk
        self.socket.close()


def _dechunk(body: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body (a truncated last chunk is kept as is)."""
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line, 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def twin_metric(triton: TritonServer, name: str, **labels: str) -> float:
    return _metric_sum(triton.metrics_url, name, labels)


def wait_until_idle(triton: TritonServer, seconds: float) -> float:
    """The twins' in-flight requests once they reach zero (or `seconds` passed)."""
    deadline = time.monotonic() + seconds
    while (
        active := twin_metric(triton, "cpu_twin_active_requests")
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    return active


def gateway_metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    """The sum of `name`'s samples on the gateway's `/metrics` that carry `labels`."""
    return _metric_sum(gateway.metrics_url, name, labels)


def _metric_sum(url: str, name: str, labels: dict[str, str]) -> float:
    with urllib.request.urlopen(url) as reply:  # noqa: S310 (http only)
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
