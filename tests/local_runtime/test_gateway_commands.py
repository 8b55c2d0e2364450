"""`gateway up` is the local runtime's command, added to the gateway's CLI through the
`llm_gateway.commands` entry point group: present when the package is installed, absent (and
nothing else broken) where it is not, as in the gateway's image."""

from __future__ import annotations

import subprocess
from importlib.metadata import EntryPoint

import pytest

from gateway import cli
from tests.gateway_fixtures import gateway_command

pytestmark = pytest.mark.slow  # each test runs the gateway CLI in a process


def gateway_help(*blocked: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gateway_command("--help", blocked_packages=blocked),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_installed_local_runtime_adds_up_to_the_gateway_cli() -> None:
    result = gateway_help()
    assert result.returncode == 0, result.stderr
    assert "start Triton (CPU twins) and the gateway" in result.stdout


def test_without_the_local_runtime_the_gateway_cli_offers_its_own_commands() -> None:
    result = gateway_help("local_runtime")
    assert result.returncode == 0, result.stderr
    assert "start Triton" not in result.stdout
    assert "run the gateway against configured services" in result.stdout


def test_a_command_whose_own_import_is_broken_is_reported_not_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = EntryPoint(
        name="broken",
        value="local_runtime.no_such_module:add_command",
        group=cli.COMMAND_PLUGINS,
    )
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    with pytest.raises(ModuleNotFoundError, match=r"local_runtime\.no_such_module"):
        cli.parser()


def test_the_up_command_takes_host_and_port() -> None:
    args = cli.parser().parse_args(["up", "--host", "127.0.0.2", "--port", "9090"])
    assert (args.host, args.port) == ("127.0.0.2", 9090)
    assert callable(args.run)
