"""HTTP requests sent byte for byte, for what a well-behaved client would never send."""

from __future__ import annotations

import http.client
import socket

import httpx

from tests.gateway_fixtures import GatewayProcess


def raw_request(
    gateway: GatewayProcess,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
    timeout: float = 10,
) -> httpx.Response:
    """The request target sent byte for byte (an HTTP client would normalize `..` and refuse
    control characters), the reply parsed by `http.client`. A Content-Length is added for a
    body, and the gateway's address as `Host` unless `headers` name one."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    lines = [f"{method} {target} HTTP/1.1", "Connection: close"]
    if "Host" not in headers:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall("\r\n".join([*lines, "", ""]).encode() + body)
        reply = http.client.HTTPResponse(connection)
        reply.begin()
        return httpx.Response(reply.status, headers=reply.getheaders(), content=reply.read())
