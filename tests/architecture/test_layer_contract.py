"""`lint-imports` holds the layers (pyproject.toml's [tool.importlinter]): it passes on the
code as it is, and fails, naming the import, when one is added that crosses them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "local_runtime", "gateway", "build_engines", "llm_contract")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The packages and the contract's configuration, in a folder of their own."""
    for package in PACKAGES:
        shutil.copytree(
            REPOSITORY / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy2(REPOSITORY / "pyproject.toml", tmp_path)
    return tmp_path


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_as_it_is_keeps_every_contract(checkout: Path) -> None:
    result = lint_imports(checkout)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported", "broken"),
    [
        ("gateway/inference/catalog.py", "build_engines.cli", "The gateway never imports"),
        ("gateway/triton/client.py", "local_runtime.up", "Layers"),
        ("gateway/triton/inputs.py", "gateway.inference.run", "The backend transport"),
        ("gateway/workers_ai/encoder.py", "gateway.openai_api.encoder", "The APIs are features"),
        ("gateway/inference/run.py", "gateway.workers_ai.schemas", "The APIs are features"),
        ("build_engines/cli.py", "gateway.settings", "Layers"),
        ("build_engines/repository.py", "local_runtime.triton_server", "Layers"),
        ("llm_contract/engines.py", "build_engines.smollm2", "Layers"),
    ],
)
def test_an_import_across_the_layers_breaks_the_contract_naming_it(
    checkout: Path, module: str, imported: str, broken: str
) -> None:
    path = checkout / module
    path.write_text(path.read_text() + f"\nimport {imported}  # noqa: E402\n")
    result = lint_imports(checkout)
    importer = module.removesuffix(".py").replace("/", ".")
    assert result.returncode == 1, result.stdout
    assert f"{importer} -> {imported}" in result.stdout
    assert f"{broken}" in result.stdout.split("Broken contracts")[1]
