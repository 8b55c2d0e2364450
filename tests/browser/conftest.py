"""A real Chromium (Debian's `/usr/bin/chromium`, driven by Playwright for Python) against
real gateways. Every test leaves a full-page screenshot in `test-artifacts/browser/`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from local_runtime.triton_server import TritonServer
from tests.gateway_fixtures import DatabaseFactory, GatewayFactory, GatewayProcess

CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", "test-artifacts")) / "browser"
WEB_APP_PAGE = b"<!doctype html><html><head><title>A web app</title></head><body></body></html>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: while Playwright's sync API is open its event loop runs in this thread,
    where the other suites' `asyncio.run()` (PostgreSQL set-up) cannot."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()


class _WebAppPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(WEB_APP_PAGE)))
        self.end_headers()
        self.wfile.write(WEB_APP_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class WebApps:
    """Two origins serving an empty page, for scripts that call the gateway: the gateway
    allows the first and not the second."""

    allowed: str
    other: str


@pytest.fixture(scope="session")
def web_apps() -> Iterator[WebApps]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _WebAppPage) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield WebApps(*(f"http://127.0.0.1:{server.server_address[1]}" for server in servers))
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def cors_gateway(
    web_apps: WebApps,
    database_factory: DatabaseFactory,
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway on the paced random twins that lets the allowed web app call it."""
    start = GatewayFactory(
        database_factory, triton, cpu_model_repository, tmp_path_factory.mktemp("cors-gateway")
    )
    process = start(GATEWAY_CORS_ALLOW_ORIGINS=web_apps.allowed)
    yield process
    process.stop()
