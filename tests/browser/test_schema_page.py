"""`/schema` shows the API's operations from the gateway alone: in a Chromium where every
request to another host is aborted (an air-gapped install), under a policy that lets only
the gateway's own stylesheet in and no script at all."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import ConsoleMessage, Locator, Page, Route, expect

from tests.gateway_fixtures import GatewayProcess

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
URL = re.compile(rb"""(?:https?:)?//[^\s"'<>()]+""")


def operation(page: Page, path: str) -> Locator:
    """The summary line of the operations on `path`."""
    return page.locator("summary").filter(has=page.locator("code").get_by_text(path, exact=True))


def test_the_schema_page_shows_the_operations_with_every_other_host_blocked(
    page: Page, gateway_without_backend: GatewayProcess
) -> None:
    blocked: list[str] = []
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def policy_violations(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.route("**/*", only_local)
    page.on("console", policy_violations)
    page.goto(f"{gateway_without_backend.base_url}/schema")

    run = operation(page, "/client/v4/accounts/{account_id}/ai/run/{model}")
    expect(run).to_contain_text("POST")
    expect(run).to_contain_text("Run a model")
    expect(operation(page, "/v1/chat/completions")).to_contain_text("Create a chat completion")
    expect(operation(page, "/admin/v1/accounts")).to_contain_text(
        ["List accounts", "Create an account"]
    )
    run.click()
    page.locator("details", has=run).get_by_role("link", name="TextGenerationRequest").click()
    body = page.locator("details", has=page.locator("#schema-TextGenerationRequest"))
    expect(body.get_by_text("temperature", exact=True)).to_be_visible()
    # The gateway's stylesheet applied: a POST is green.
    expect(run.locator(".method")).to_have_css("color", "rgb(26, 127, 55)")
    assert blocked == []
    assert refused == []


def test_the_schema_page_references_no_url_outside_the_gateway(
    gateway_without_backend: GatewayProcess,
) -> None:
    """The page, and the files of the gateway's that it links."""
    with httpx.Client(base_url=gateway_without_backend.base_url, timeout=10) as client:
        page = client.get("/schema")
        assert page.status_code == 200
        linked = re.findall(rb'(?:href|src)="(/[^/"][^"]*)"', page.content)
        files = [client.get(path.decode()).content for path in linked]
    for document in (page.content, *files):
        urls = [url.decode() for url in URL.findall(document)]
        assert [url for url in urls if urlsplit(url).hostname not in LOCAL_HOSTS] == []
    assert b"/schema/openapi.json" in linked
    assert b"<script" not in page.content


def test_the_schema_page_lets_in_only_its_own_stylesheet(
    gateway_without_backend: GatewayProcess,
) -> None:
    reply = httpx.get(f"{gateway_without_backend.base_url}/schema", timeout=10)
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in reply.headers["content-security-policy"].split(";")
    }
    assert policy["default-src"] == ["'none'"]
    assert policy["style-src"] == ["'self'"]
    assert "script-src" not in policy
    assert policy["frame-ancestors"] == ["'none'"]
    assert reply.headers["x-content-type-options"] == "nosniff"
