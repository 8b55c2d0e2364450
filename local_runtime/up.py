"""`gateway up`: the whole product on embedded defaults, for a first run or a laptop.

Builds the CPU model repository if it is missing, migrates the SQLite database, starts
`tritonserver` and the gateway, creates a demo account and token, and prints a curl line.
SIGTERM stops it as Ctrl-C does: the gateway drains, then Triton stops, and it exits 0;
Triton also ends if `gateway up` is killed outright. A Triton that keeps exiting ends it
with status 1.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

import uvicorn
from pydantic import ValidationError

from build_engines.cli import main as build_engines_main
from gateway.accounts.service import AccountService
from gateway.cli import run_in_session
from gateway.db import migrate
from gateway.inference.catalog import load_catalog, twin_catalog
from gateway.server import listening_sockets, uvicorn_config
from gateway.settings import (
    TritonSettings,
    WeakAdminToken,
    check_admin_token,
    get_settings,
    settings_problems,
)
from gateway.tokens.schemas import TokenCreated
from gateway.tokens.service import TokenService
from llm_contract.embeddings import EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import DEFAULT_TWIN, TWIN_DESCRIPTION_FILE
from local_runtime.foreground import interrupt_on_sigint_and_sigterm, report_to_stderr
from local_runtime.ports import port_is_free
from local_runtime.triton_server import (
    RestartBackoff,
    TritonGaveUp,
    TritonLaunchError,
    TritonServer,
    restarted_when_it_exits,
)

logger = logging.getLogger(__name__)
DEMO_ACCOUNT = "demo"


def up(host: str | None = None, port: int | None = None) -> int:
    report_to_stderr()
    interrupt_on_sigint_and_sigterm()
    try:
        return _up(host, port)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM; uvicorn re-raises it once it has drained
        return 0
    except TritonLaunchError as error:
        logger.error("%s", error)
        return 1
    except ValidationError as error:
        logger.error("%s", settings_problems(error))
        return 1
    except WeakAdminToken as error:
        logger.error("%s", error)
        return 1


def _up(host: str | None, port: int | None) -> int:
    generated_admin_token = None
    if not os.environ.get("GATEWAY_ADMIN_TOKEN"):
        generated_admin_token = os.environ["GATEWAY_ADMIN_TOKEN"] = secrets.token_urlsafe(32)
        print(f"admin token (generated): {generated_admin_token}")
    settings = get_settings()
    repository = settings.triton.model_repository
    triton = _triton_server(settings.triton)
    config = uvicorn_config(host, port)
    check_admin_token(settings, config.host)
    triton.ensure_ports_free()
    metrics_port = settings.server.metrics_port
    for held in (config.port, metrics_port):
        if held and not port_is_free(config.host, held):
            logger.error(
                "the gateway cannot listen on %s:%s: another server holds the port",
                config.host,
                held,
            )
            return 1
    precision = _twins_to_build(repository)
    if precision is not None and build_engines_main(
        ["--target", "cpu", "--precision", precision, "--output", str(repository)]
    ):
        return 1
    load_catalog(settings.triton.catalog_file, repository).check_tokenizers()
    migrate.upgrade(settings.database.url)
    account_id, token = _demo_credentials()

    sockets = listening_sockets(config, metrics_port)
    gateway = uvicorn.Server(config)
    gave_up: list[TritonGaveUp] = []

    def give_up(error: TritonGaveUp) -> None:
        gave_up.append(error)
        gateway.should_exit = True

    logger.info("starting tritonserver …")
    with triton, restarted_when_it_exits(triton, on_give_up=give_up):
        model = twin_catalog(repository).entries[0].name
        base_url = f"http://{config.host}:{config.port}"
        print(
            f"\ntritonserver ready (pid {triton.pid}, log: {triton.log_path}); "
            f"gateway on {base_url}"
            + (f" (metrics: http://{config.host}:{metrics_port}/metrics)" if metrics_port else "")
            + "\n"
            + ready_message(base_url, model, account_id, token.token, generated_admin_token),
            flush=True,
        )
        gateway.run(sockets=sockets)
    if gave_up:
        raise gave_up[0]
    return 0


def ready_message(
    base_url: str, model: str, account_id: str, token: str, admin_token: str | None = None
) -> str:
    """What `gateway up` prints once it serves: the shell variables the documentation's
    examples use (the admin token only when `gateway up` generated it), a curl line that
    streams an answer, and the playground."""
    variables = f"export ACCOUNT_ID={account_id} TOKEN={token}"
    if admin_token is not None:
        variables += f" GATEWAY_ADMIN_TOKEN={admin_token}"
    return (
        "The demo account, for the examples in README.md and docs/ (paste into your shell):\n\n"
        f"  {variables}\n\n"
        "Stream tokens with:\n\n"
        f"  curl -N {base_url}/client/v4/accounts/{account_id}/ai/run/{model} \\\n"
        f"    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n"
        '    -d \'{"prompt": "What is the capital of France?", "temperature": 0, '
        '"stream": true}\'\n\n'
        f"or open {base_url}/playground in a browser and paste the token.\n"
    )


def _twins_to_build(repository: Path) -> str | None:
    """The `build-engines --precision` that completes the repository: `all` when a text twin
    is missing, or was built before twins described what they run (and held their weights in
    a file); `none` when only the embedding twin is missing from a default build (one made
    before the embedding model existed); None when nothing is."""
    for spec in ENGINE_SPECS.values():
        model_dir = repository / spec.generation_model
        if not model_dir.is_dir():
            return "all"
        built_before = (model_dir / "config.pbtxt").is_file()
        if built_before and not (model_dir / TWIN_DESCRIPTION_FILE).is_file():
            return "all"
    if (repository / EMBEDDING_MODEL).is_dir() or not _runs_the_default_model(repository):
        return None
    return "none"


def _runs_the_default_model(repository: Path) -> bool:
    """Whether the text twins run the default model (a random build has no embedding twin)."""
    description = repository / ENGINE_SPECS["int8"].generation_model / TWIN_DESCRIPTION_FILE
    try:
        return bool(json.loads(description.read_text())["model"] == DEFAULT_TWIN.model)
    except (OSError, ValueError, KeyError, TypeError):
        return True


def _triton_server(settings: TritonSettings) -> TritonServer:
    grpc = urlparse(f"grpc://{settings.grpc_url}")
    http = urlparse(settings.http_url)
    return TritonServer(
        settings.model_repository,
        grpc_port=grpc.port or 8001,
        http_port=http.port or 8000,
        metrics_port=(http.port or 8000) + 2,
        restarts=RestartBackoff(
            limit=settings.restart_limit, window=settings.restart_window_seconds
        ),
    )


def _demo_credentials() -> tuple[str, TokenCreated]:
    async def work(session):  # type: ignore[no-untyped-def]
        accounts = AccountService(session)
        account = await accounts.get_by_name(DEMO_ACCOUNT) or await accounts.create(DEMO_ACCOUNT)
        return account.id, await TokenService(session).create(account.id, "quickstart")

    return run_in_session(work)  # type: ignore[no-any-return]
