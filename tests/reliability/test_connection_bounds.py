"""What one connection may cost the gateway: a bounded request head, read within a time
limit, a body within another, and a bounded number of connections, each refused with a
status a client understands."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.gateway_fixtures import GatewayFactory, GatewayProcess

HEAD_LIMIT = 8 * 1024


@pytest.fixture(scope="module")
def bounded_gateway(module_gateway_factory: GatewayFactory) -> GatewayProcess:
    return module_gateway_factory(
        GATEWAY_MAX_HEADER_BYTES=str(HEAD_LIMIT),
        GATEWAY_MAX_HEADER_COUNT="20",
        GATEWAY_HEADER_TIMEOUT_SECONDS="1",
        GATEWAY_BODY_TIMEOUT_SECONDS="1",
        GATEWAY_MAX_CONNECTIONS="16",
    )


def connect(gateway: GatewayProcess) -> socket.socket:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def reply_of(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def send_until_refused(connection: socket.socket, data: bytes) -> None:
    """Send `data` in pieces; the server may close the connection before it has it all."""
    try:
        for start in range(0, len(data), 4096):
            connection.sendall(data[start : start + 4096])
    except (BrokenPipeError, ConnectionResetError):
        pass


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_an_unterminated_header_over_the_limit_gets_431_and_is_not_read_on(
    bounded_gateway: GatewayProcess,
) -> None:
    with connect(bounded_gateway) as connection:
        send_until_refused(
            connection, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1_000_000
        )
        reply = reply_of(connection)

    assert status_of(reply) == 431
    assert b"over 8192 bytes" in reply


def test_a_head_sent_in_one_go_far_over_the_limit_still_reads_its_431(
    bounded_gateway: GatewayProcess,
) -> None:
    """The gateway reads and drops what arrives after its answer: closing with those bytes
    unread resets the connection, which destroys the answer unread (most of these tries)."""
    for _ in range(5):
        with connect(bounded_gateway) as connection:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.sendall(b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"a" * 1_000_000)
            reply = reply_of(connection)

        assert status_of(reply) == 431


def test_a_huge_authorization_header_gets_431_before_any_authentication(
    bounded_gateway: GatewayProcess,
) -> None:
    reply = httpx.get(
        f"{bounded_gateway.base_url}/client/v4/user/tokens/verify",
        headers={"Authorization": "Bearer " + "x" * 100_000},
    )

    assert reply.status_code == 431
    assert reply.json()["success"] is False


def test_more_headers_than_the_limit_get_431(bounded_gateway: GatewayProcess) -> None:
    headers = {f"X-Header-{index}": "1" for index in range(30)}

    reply = httpx.get(f"{bounded_gateway.base_url}/healthz", headers=headers)

    assert reply.status_code == 431
    assert "More than 20 request headers" in reply.json()["errors"][0]["message"]


@pytest.mark.parametrize("base", ["/v1", "/client/v4/accounts/0123/ai/v1"])
def test_too_many_headers_under_an_openai_base_url_get_431_in_openai_format(
    bounded_gateway: GatewayProcess, base: str
) -> None:
    headers = {f"X-Header-{index}": "1" for index in range(30)}

    reply = httpx.post(f"{bounded_gateway.base_url}{base}/chat/completions", headers=headers)

    assert reply.status_code == 431
    assert reply.json()["error"]["message"] == "More than 20 request headers"


def test_headers_within_the_limits_are_served(bounded_gateway: GatewayProcess) -> None:
    headers = {f"X-Header-{index}": "v" * 100 for index in range(15)}

    assert httpx.get(f"{bounded_gateway.base_url}/healthz", headers=headers).status_code == 200


def test_a_half_sent_request_head_gets_408_after_the_header_timeout(
    bounded_gateway: GatewayProcess,
) -> None:
    with connect(bounded_gateway) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        reply = reply_of(connection)

    assert status_of(reply) == 408
    assert time.monotonic() - started < 5


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    bounded_gateway: GatewayProcess,
) -> None:
    with connect(bounded_gateway) as connection:
        started = time.monotonic()
        reply = reply_of(connection)

    assert reply == b""
    assert time.monotonic() - started < 5


def test_a_body_that_comes_too_slowly_gets_408(bounded_gateway: GatewayProcess) -> None:
    with connect(bounded_gateway) as connection:
        connection.sendall(
            b"POST /admin/v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: {bounded_gateway.admin_headers['Authorization']}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        reply = reply_of(connection)

    assert status_of(reply) == 408
    assert b"body came too slowly" in reply


def test_a_slow_body_under_an_openai_base_url_gets_408_in_openai_format(
    bounded_gateway: GatewayProcess,
) -> None:
    with connect(bounded_gateway) as connection:
        connection.sendall(
            b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        reply = reply_of(connection)

    assert status_of(reply) == 408
    body = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert body["error"]["message"] == "The request's body came too slowly"


@pytest.fixture
def open_connections(bounded_gateway: GatewayProcess) -> Iterator[list[socket.socket]]:
    """Every connection the gateway allows, idle (each closed within the header timeout)."""
    with ExitStack() as stack:
        yield [stack.enter_context(connect(bounded_gateway)) for _ in range(16)]
    time.sleep(0.2)  # the gateway has seen them close


def test_a_connection_beyond_the_limit_gets_503_with_retry_after_at_once(
    bounded_gateway: GatewayProcess, open_connections: list[socket.socket]
) -> None:
    time.sleep(0.2)  # the server has accepted the 16
    with connect(bounded_gateway) as connection:
        connection.settimeout(0.5)
        reply = reply_of(connection)

    assert status_of(reply) == 503
    assert b"retry-after: 1" in reply.lower()


def test_connections_are_served_again_once_others_close(
    bounded_gateway: GatewayProcess, open_connections: list[socket.socket]
) -> None:
    for connection in open_connections:
        connection.close()
    time.sleep(0.2)

    assert httpx.get(f"{bounded_gateway.base_url}/healthz").status_code == 200
