"""The commands this package adds to the gateway's CLI, registered under the entry point
group `gateway.cli.COMMAND_PLUGINS` (pyproject.toml): `gateway up`, which `./scripts/up` runs.

Kept apart from `up.py` so that every other `gateway` command loads none of what `up` needs
(the engine builder, uvicorn, the Triton launcher).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_up_command(commands: argparse._SubParsersAction[Any]) -> None:
    up = commands.add_parser("up", help="start Triton (CPU twins) and the gateway")
    up.add_argument("--host")
    up.add_argument("--port", type=int)
    up.set_defaults(run=_run_up)


def _run_up(args: argparse.Namespace) -> int:
    from local_runtime.up import up

    return up(host=args.host, port=args.port)
