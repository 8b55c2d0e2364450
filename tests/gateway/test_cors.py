"""The two ASGI wrappers of `gateway/cors.py`, driven directly around a tiny app: which origins
may read the account API's answers, what a preflight is answered, that no other origin reaches
the admin API, and which `Host` names the admin API and the playground answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
import pytest
from litestar.types import ASGIApp, HTTPRequestEvent, Message, Receive, Scope, Send

from gateway.cors import EXPOSED_HEADERS, AllowedHosts, CrossOriginPolicy
from gateway.settings import allowed_origins, host_names

APP = "https://app.example"
ELSEWHERE = "https://elsewhere.example"
RUN = "/client/v4/accounts/acct/ai/run/@cf/meta/llama"
APP_HEADERS = [(b"content-type", b"text/plain"), (b"x-request-id", b"r-1")]


@dataclass
class InnerApp:
    """The app behind the wrapper: answers 200 `inner` with headers of its own."""

    scopes: list[Scope] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": APP_HEADERS})
        await send({"type": "http.response.body", "body": b"inner", "more_body": False})


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    reached_app: bool

    def header(self, name: str) -> str | None:
        values = [v.decode() for k, v in self.headers if k.decode().lower() == name]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    @property
    def cors_headers(self) -> dict[str, str]:
        return {
            k.decode(): v.decode()
            for k, v in self.headers
            if k.startswith(b"access-control-") or k == b"vary"
        }

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def request(
    path: str,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    *,
    host: str | None = "gateway.example:8080",
    scheme: str = "http",
) -> Scope:
    fields = [(b"host", host.encode())] if host is not None else []
    fields += [(name.lower().encode(), value.encode("latin-1")) for name, value in headers]
    return cast(
        Scope,
        {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": fields,
            "client": ("198.51.100.1", 50000),
            "server": ("gateway.example", 8080),
        },
    )


def from_origin(origin: str, path: str = RUN, method: str = "GET", **scope: Any) -> Scope:
    return request(path, method, [("Origin", origin)], **scope)


async def answer(wrap: ASGIApp, inner: InnerApp, scope: Scope) -> Answer:
    sent: list[Message] = []

    async def receive() -> HTTPRequestEvent:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await wrap(scope, cast(Receive, receive), send)
    start, body = sent
    assert start["type"] == "http.response.start"
    assert body["type"] == "http.response.body"
    return Answer(start["status"], list(start["headers"]), body["body"], bool(inner.scopes))


async def cors(scope: Scope, origins: str = APP) -> Answer:
    """The answer of the account API wrapped for `origins` (as `GATEWAY_CORS_ALLOW_ORIGINS`)."""
    inner = InnerApp()
    return await answer(CrossOriginPolicy(inner, frozenset(allowed_origins(origins))), inner, scope)


async def hosts(scope: Scope, listed: str = "localhost,127.0.0.1,::1,gateway.example") -> Answer:
    """The answer with `listed` as `GATEWAY_ALLOWED_HOSTS`."""
    inner = InnerApp()
    return await answer(AllowedHosts(inner, frozenset(host_names(listed))), inner, scope)


# Origins on the account API


async def test_a_request_without_an_origin_is_answered_untouched() -> None:
    reply = await cors(request(RUN))

    assert (reply.status, reply.headers, reply.body) == (200, APP_HEADERS, b"inner")


@pytest.mark.parametrize("path", [RUN, "/v1/chat/completions", "/client/v4/user/tokens/verify"])
async def test_an_allowed_origin_may_read_the_account_apis_answer_and_its_exposed_headers(
    path: str,
) -> None:
    reply = await cors(from_origin(APP, path))

    assert (reply.status, reply.body) == (200, b"inner")
    assert reply.headers[: len(APP_HEADERS)] == APP_HEADERS
    assert reply.cors_headers == {
        "access-control-allow-origin": APP,
        "vary": "Origin",
        "access-control-expose-headers": EXPOSED_HEADERS.decode(),
    }


def test_scripts_may_read_the_request_ids_and_every_limit_header() -> None:
    exposed = EXPOSED_HEADERS.decode().split(", ")

    assert exposed[:4] == ["x-request-id", "x-run-id", "retry-after", "x-should-retry"]
    assert sorted(exposed[4:]) == sorted(
        f"x-ratelimit-{field}-{budget}"
        for field in ("limit", "remaining", "reset")
        for budget in ("requests", "tokens", "monthly-tokens")
    )


async def test_an_origin_is_matched_whatever_the_case_it_is_sent_in() -> None:
    reply = await cors(from_origin("HTTPS://App.Example"), origins="https://APP.example")

    assert reply.header("access-control-allow-origin") == APP


async def test_an_origin_not_listed_is_answered_without_cors_headers() -> None:
    reply = await cors(from_origin(ELSEWHERE))

    assert (reply.status, reply.reached_app, reply.cors_headers) == (200, True, {})


async def test_with_a_wildcard_every_origin_reads_the_answer_and_nothing_varies_by_origin() -> None:
    reply = await cors(from_origin(ELSEWHERE), origins="*")

    assert reply.header("access-control-allow-origin") == "*"
    assert reply.header("vary") is None
    assert reply.header("access-control-allow-credentials") is None


@pytest.mark.parametrize(
    "path", ["/v1", "/v10/models", "/client/v40/x", "/healthz", "/playground", "/schema"]
)
async def test_paths_outside_the_account_api_answer_an_allowed_origin_without_cors_headers(
    path: str,
) -> None:
    reply = await cors(from_origin(APP, path))

    assert (reply.status, reply.cors_headers) == (200, {})


@pytest.mark.parametrize("path", ["//v1//chat/completions", "/playground/../v1/models"])
async def test_the_account_api_is_recognised_as_routing_resolves_the_path(path: str) -> None:
    reply = await cors(from_origin(APP, path))

    assert reply.header("access-control-allow-origin") == APP


# Preflights


async def test_a_preflight_from_an_allowed_origin_is_answered_without_the_app() -> None:
    reply = await cors(
        request(
            RUN,
            "OPTIONS",
            [
                ("Origin", APP),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization,content-type, x-stainless-os"),
            ],
        )
    )

    assert (reply.status, reply.body, reply.reached_app) == (204, b"", False)
    assert reply.cors_headers == {
        "access-control-allow-origin": APP,
        "vary": "Origin",
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "authorization, content-type, x-stainless-os",
        "access-control-max-age": "600",
    }
    assert reply.header("content-length") == "0"
    assert reply.header("content-type") is None


async def test_a_preflight_that_names_no_headers_is_allowed_the_token_and_the_json_body() -> None:
    reply = await cors(
        request(RUN, "OPTIONS", [("Origin", APP), ("Access-Control-Request-Method", "GET")])
    )

    assert reply.header("access-control-allow-headers") == "authorization, content-type"


async def test_an_options_request_that_asks_no_method_is_not_a_preflight() -> None:
    reply = await cors(from_origin(APP, method="OPTIONS"))

    assert (reply.status, reply.reached_app) == (200, True)
    assert reply.header("access-control-allow-methods") is None
    assert reply.header("access-control-allow-origin") == APP


# The admin API: the gateway's own pages only


@pytest.mark.parametrize("origin", [APP, ELSEWHERE, "null", "http://gateway.example"])
async def test_the_admin_api_refuses_any_other_origin_before_the_app(origin: str) -> None:
    reply = await cors(from_origin(origin, "/admin/v1/accounts"))

    assert (reply.status, reply.reached_app) == (403, False)
    assert reply.header("content-type") == "application/json"
    assert reply.json() == {
        "errors": [
            {"code": 10000, "message": "The admin API does not answer cross-origin requests"}
        ],
        "result": None,
        "success": False,
        "messages": [],
    }


async def test_a_path_that_resolves_into_the_admin_api_is_refused_to_another_origin() -> None:
    reply = await cors(from_origin(APP, "/v1/../admin/v1/accounts"))

    assert (reply.status, reply.reached_app) == (403, False)


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("gateway.example:8080", "http://gateway.example:8080"),
        ("Gateway.Example:8080", "http://gateway.example:8080"),
        ("[::1]:8000", "http://[::1]:8000"),
    ],
)
async def test_the_admin_api_answers_a_page_of_the_scheme_and_host_it_was_sent_to(
    host: str, origin: str
) -> None:
    reply = await cors(from_origin(origin, "/admin/v1/accounts", host=host))

    assert (reply.status, reply.reached_app, reply.cors_headers) == (200, True, {})


async def test_the_admin_api_refuses_its_own_host_without_a_host_header() -> None:
    reply = await cors(from_origin("http://gateway.example:8080", "/admin/v1/accounts", host=None))

    assert reply.status == 403


# Allowed hosts: the admin API and the playground


@pytest.mark.parametrize("path", ["/admin/v1/accounts", "/playground", "/playground/app.js"])
async def test_a_name_not_listed_is_refused_by_the_admin_api_and_the_playground(path: str) -> None:
    reply = await hosts(request(path, host="rebound.attacker.example"))

    assert (reply.status, reply.reached_app) == (400, False)
    [error] = reply.json()["errors"]
    assert error == {
        "code": 7005,
        "message": "This host name is not one the gateway answers for its admin API and "
        "playground (GATEWAY_ALLOWED_HOSTS)",
    }


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "LOCALHOST:8000", "127.0.0.1:80", "[::1]:8000"]
)
async def test_a_listed_name_is_answered_whatever_its_port_and_case(host: str) -> None:
    reply = await hosts(request("/admin/v1/accounts", host=host))

    assert (reply.status, reply.reached_app) == (200, True)


@pytest.mark.parametrize("path", [RUN, "/v1/models", "/healthz", "/metrics"])
async def test_other_paths_answer_any_name(path: str) -> None:
    reply = await hosts(request(path, host="rebound.attacker.example"))

    assert (reply.status, reply.reached_app) == (200, True)


async def test_a_path_that_resolves_into_the_admin_api_is_checked_too() -> None:
    reply = await hosts(request("//admin/./v1/accounts", host="rebound.attacker.example"))

    assert reply.status == 400


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("host", "localhost"), ("host", "localhost")],
        [("host", "localhost"), ("host", "rebound.attacker.example")],
    ],
)
async def test_a_request_with_no_host_or_more_than_one_is_refused(
    headers: list[tuple[str, str]],
) -> None:
    reply = await hosts(request("/admin/v1/accounts", headers=headers, host=None))

    assert reply.status == 400


async def test_a_listed_wildcard_answers_every_name() -> None:
    reply = await hosts(request("/admin/v1/accounts", host="any.example"), listed="*")

    assert reply.status == 200


@pytest.mark.parametrize("wrapper", ["cors", "hosts"])
async def test_what_is_not_http_passes_through_both_wrappers(wrapper: str) -> None:
    """The lifespan's scope has no headers to read."""
    inner = InnerApp()
    scope = cast(Scope, {"type": "lifespan", "asgi": {"version": "3.0"}})
    wrap = (
        CrossOriginPolicy(inner, frozenset({APP}))
        if wrapper == "cors"
        else AllowedHosts(inner, frozenset({"localhost"}))
    )

    reply = await answer(wrap, inner, scope)

    assert (reply.status, reply.reached_app) == (200, True)
