"""`gateway up`: the whole product on embedded defaults, for a first run or a laptop.

Builds the CPU model repository if it is missing, migrates the SQLite database, starts
`tritonserver` and the gateway, creates a demo account and token, and prints a curl line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from urllib.parse import urlparse

import uvicorn

from build_engines.cli import main as build_engines_main
from build_engines.launcher import TritonServer, restarted_when_it_exits
from build_engines.spec import ENGINE_SPECS
from gateway.accounts.service import AccountService
from gateway.cli import run_in_session
from gateway.db import migrate
from gateway.inference.catalog import twin_catalog
from gateway.server import uvicorn_config
from gateway.settings import get_settings
from gateway.tokens.schemas import TokenCreated
from gateway.tokens.service import TokenService

DEMO_ACCOUNT = "demo"


def up(host: str | None = None, port: int | None = None) -> int:
    if not os.environ.get("GATEWAY_ADMIN_TOKEN"):
        os.environ["GATEWAY_ADMIN_TOKEN"] = secrets.token_urlsafe(32)
        print(f"admin token (generated): {os.environ['GATEWAY_ADMIN_TOKEN']}")
    settings = get_settings()
    repository = settings.triton.model_repository
    if not all(
        (repository / spec.triton_model("tensorrt_llm")).is_dir() for spec in ENGINE_SPECS.values()
    ):
        build_engines_main(["--target", "cpu", "--precision", "all", "--output", str(repository)])
    migrate.upgrade(settings.database.url)
    account_id, token = _demo_credentials()

    grpc = urlparse(f"grpc://{settings.triton.grpc_url}")
    http = urlparse(settings.triton.http_url)
    triton = TritonServer(
        repository,
        grpc_port=grpc.port or 8001,
        http_port=http.port or 8000,
        metrics_port=(http.port or 8000) + 2,
    )
    print("starting tritonserver …", flush=True)
    with triton, restarted_when_it_exits(triton):
        config = uvicorn_config(host, port)
        model = twin_catalog(repository).entries[0].name
        base_url = f"http://{config.host}:{config.port}"
        print(
            f"\ntritonserver ready (log: {triton.log_path}); gateway on {base_url}\n"
            "Stream tokens with:\n\n"
            f"  curl -N {base_url}/client/v4/accounts/{account_id}/ai/run/{model} \\\n"
            f"    -H 'Authorization: Bearer {token.token}' -H 'Content-Type: application/json' \\\n"
            '    -d \'{"prompt": "Tell me a story about the sea", "stream": true}\'\n',
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once drained
            uvicorn.Server(config).run()
    return 0


def _demo_credentials() -> tuple[str, TokenCreated]:
    async def work(session):  # type: ignore[no-untyped-def]
        accounts = AccountService(session)
        account = await accounts.get_by_name(DEMO_ACCOUNT) or await accounts.create(DEMO_ACCOUNT)
        return account.id, await TokenService(session).create(account.id, "quickstart")

    return run_in_session(work)  # type: ignore[no-any-return]
