"""`gateway`: run the gateway and administer it from the command line.

gateway up                       Triton on the CPU twins + the gateway, embedded defaults
                                 (added by `local_runtime` when it is installed)
gateway serve                    the gateway alone, against configured Triton and database
gateway migrate [--downgrade R]  apply (or roll back) the database migrations
gateway accounts create NAME | list
gateway tokens create ACCOUNT_ID --name N [--expires-at ISO] | list ACCOUNT_ID
gateway tokens revoke ACCOUNT_ID TOKEN_ID
gateway usage [--since ISO] [--until ISO] [--group-by account|model|day] [--account ID]
              [--csv | --json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, TypeVar

import msgspec
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.accounts.service import AccountService
from gateway.db import migrate
from gateway.db.engine import create_engine
from gateway.errors import ApiError
from gateway.inference.catalog import CatalogError, load_catalog
from gateway.paging import every_page
from gateway.settings import WeakAdminToken, check_admin_token, get_settings, settings_problems
from gateway.tokens.service import TokenService
from gateway.usage import report
from gateway.usage.service import UsageService, period

T = TypeVar("T")

COMMAND_PLUGINS = "llm_gateway.commands"
"""Entry point group of commands that packages above the gateway add: each entry is called
with the subcommands' parser and adds one whose defaults set `run(args) -> exit code`."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)

    _add_plugin_commands(commands)
    serve = commands.add_parser("serve", help="run the gateway against configured services")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)

    migration = commands.add_parser("migrate", help="apply database migrations")
    migration.add_argument("--revision", default="head")
    migration.add_argument("--downgrade", metavar="REVISION", help="roll back to REVISION")

    accounts = commands.add_parser("accounts").add_subparsers(dest="action", required=True)
    create_account = accounts.add_parser("create")
    create_account.add_argument("name")
    list_accounts = accounts.add_parser("list")

    tokens = commands.add_parser("tokens").add_subparsers(dest="action", required=True)
    create_token = tokens.add_parser("create")
    create_token.add_argument("account_id")
    create_token.add_argument("--name", required=True)
    create_token.add_argument("--expires-at", type=datetime.fromisoformat)
    list_tokens = tokens.add_parser("list")
    list_tokens.add_argument("account_id")
    revoke = tokens.add_parser("revoke")
    revoke.add_argument("account_id")
    revoke.add_argument("token_id")

    usage = commands.add_parser("usage", help="usage totals over a period")
    usage.add_argument("--since", type=datetime.fromisoformat, help="default: start of month")
    usage.add_argument("--until", type=datetime.fromisoformat, help="default: now")
    usage.add_argument("--group-by", choices=("account", "model", "day"), default="account")
    usage.add_argument("--account", help="only this account id")
    usage.add_argument("--csv", action="store_true", help="CSV instead of a table")

    for sub in (create_account, list_accounts, create_token, list_tokens, revoke, usage):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    return root


def _add_plugin_commands(commands: argparse._SubParsersAction[Any]) -> None:
    for entry in entry_points(group=COMMAND_PLUGINS):
        if importlib.util.find_spec(entry.module.partition(".")[0]) is None:
            continue  # its package is not in this install (the image has no local runtime)
        entry.load()(commands)


def run_in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work on the configured database and commit it."""

    async def run() -> T:
        engine = create_engine(get_settings().database.url)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _print(value: Any, as_json: bool) -> None:
    data = msgspec.to_builtins(value)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        print("  ".join(f"{key}={'' if item is None else item}" for key, item in row.items()))


def _usage(args: argparse.Namespace) -> int:
    since, until = period(args.since, args.until)
    rows = run_in_session(
        lambda s: UsageService(s).totals(since, until, args.group_by, args.account)
    )
    if args.json:
        _print(rows, True)
    elif args.csv:
        sys.stdout.write(report.as_csv(rows, args.group_by))
    else:
        print(f"usage from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC")
        sys.stdout.write(report.as_table(rows, args.group_by))
    return 0


def _admin(args: argparse.Namespace) -> int:
    if args.command == "usage":
        return _usage(args)
    if args.command == "accounts":
        if args.action == "create":
            _print(run_in_session(lambda s: AccountService(s).create(args.name)), args.json)
        else:
            _print(run_in_session(lambda s: every_page(AccountService(s).list)), args.json)
        return 0
    if args.action == "create":
        created = run_in_session(
            lambda s: TokenService(s).create(args.account_id, args.name, args.expires_at)
        )
        _print(created, args.json)
        if not args.json:
            print("The token is shown once; it is stored only as a hash.", file=sys.stderr)
    elif args.action == "list":
        _print(
            run_in_session(
                lambda s: every_page(functools.partial(TokenService(s).list, args.account_id))
            ),
            args.json,
        )
    else:
        run_in_session(lambda s: TokenService(s).revoke(args.account_id, args.token_id))
        print(f"revoked {args.token_id}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "serve":
            from gateway.server import serve

            settings = get_settings()
            check_admin_token(settings, args.host or settings.server.host)
            triton = settings.triton
            load_catalog(triton.catalog_file, triton.model_repository).check_tokenizers()
            return serve(host=args.host, port=args.port, workers=args.workers)
        if "run" in args:
            return int(args.run(args))
        if args.command == "migrate":
            url = get_settings().database.url
            if args.downgrade:
                migrate.downgrade(url, args.downgrade)
            else:
                migrate.upgrade(url, args.revision)
            return 0
        return _admin(args)
    except ApiError as error:
        print(f"gateway: {error.message}", file=sys.stderr)
        return 1
    except ValidationError as error:
        print(f"gateway: {settings_problems(error)}", file=sys.stderr)
        return 1
    except (CatalogError, WeakAdminToken) as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
