"""Real Helm through `helm-sdkpy` (Helm's Go library; Python >= 3.12, in a cached venv):
lint of the chart, and the chart's manifests as Helm renders them."""

from __future__ import annotations

import ast
import glob
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.file_lock import held

REPOSITORY = Path(__file__).resolve().parents[2]
CHART = REPOSITORY / "helm" / "llm-gateway"
HELM_VENV = REPOSITORY / ".venv-helm"
# helm-sdkpy and its dependencies, pinned with hashes (uv pip compile, see the file).
HELM_SDKPY = Path(__file__).with_name("helm-sdkpy.requirements")
LINT = """
import sys
from helm_sdkpy import actions
library = actions.get_library()
configuration = actions.Configuration()  # kept referenced: its handle dies with it
result = actions.ffi.new("char **")
library.helm_sdkpy_lint(configuration._handle_value, sys.argv[1].encode(), result)
print(actions.string_from_c(result[0]))
"""
RENDERED = "<<rendered>>"
# A template that renders every other one and hands the result to `fail`, which lint logs.
RENDER_TEMPLATE = """\
{{- $documents := list }}
{{- range $name := list NAMES }}
{{- $documents = append $documents (include (print $.Template.BasePath "/" $name) $) }}
{{- end }}
{{- fail (print "MARK" (join "\\n---\\n" $documents)) }}
"""


def python312() -> str:
    """An interpreter >= 3.12: on PATH, or one of pyenv's versions."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which(name) for name in ("python3.13", "python3.12")]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.1[2-9]*/bin/python3"), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info >= (3, 12)"],
            capture_output=True,
        )
        if probe.returncode == 0:
            return candidate
    pytest.fail("Helm lint needs Python >= 3.12 (for helm-sdkpy); none was found")


@pytest.fixture(scope="session")
def helm_python() -> Path:
    python = HELM_VENV / "bin" / "python"
    stamp = HELM_VENV / "installed.requirements"
    with held(HELM_VENV.with_suffix(".lock")):
        if not stamp.exists() or stamp.read_text() != HELM_SDKPY.read_text():
            install_helm_sdkpy(python, stamp)
    return python


def install_helm_sdkpy(python: Path, stamp: Path) -> None:
    subprocess.run([python312(), "-m", "venv", "--clear", HELM_VENV], check=True)
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "-r",
            HELM_SDKPY,
        ],
        check=True,
        timeout=600,
    )
    stamp.write_text(HELM_SDKPY.read_text())


def helm_lint(helm_python: Path, chart: Path) -> tuple[dict[str, Any], str]:
    """Helm's lint of a chart folder: its result and its log."""
    done = subprocess.run(
        [helm_python, "-c", LINT, str(chart)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout), done.stderr


Lint = Callable[[Path], dict[str, Any]]


@pytest.fixture(scope="session")
def lint(helm_python: Path) -> Lint:
    """Helm's lint of a chart folder: {"Messages": [{"Severity", "Path"}], "Errors": …}."""
    return lambda chart: helm_lint(helm_python, chart)[0]


class Manifests(list[dict[str, Any]]):
    """Rendered Kubernetes objects."""

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in self if item["kind"] == kind]

    def named(self, kind: str, suffix: str) -> dict[str, Any]:
        """The one object of `kind` whose name ends with `suffix`."""
        [item] = [item for item in self.of_kind(kind) if item["metadata"]["name"].endswith(suffix)]
        return item


Render = Callable[[dict[str, Any]], Manifests]


@pytest.fixture(scope="session")
def render(helm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """The chart's objects as Helm renders them, for the defaults merged with some values.

    helm-sdkpy has no client-only `template`; but lint renders every template, and in lint
    mode `fail` logs its message instead of stopping. So a copy of the chart gets one more
    template that renders all the others and fails with the result, read back from the log.
    """

    def run(override: dict[str, Any]) -> Manifests:
        chart = chart_with_values(tmp_path_factory.mktemp("render"), override)
        names = " ".join(f'"{path.name}"' for path in sorted((chart / "templates").glob("*.yaml")))
        template = RENDER_TEMPLATE.replace("NAMES", names).replace("MARK", RENDERED)
        (chart / "templates" / "zz-render-everything.yaml").write_text(template)
        result, log = helm_lint(helm_python, chart)
        assert errors(result) == [], result
        [text] = [
            ast.literal_eval(quoted)  # Go's quoting is a subset of Python's string literals
            for quoted in re.findall(r'message=("(?:[^"\\]|\\.)*")', log)
            if quoted.startswith(f'"{RENDERED}')
        ]
        documents = yaml.safe_load_all(text.removeprefix(RENDERED))
        return Manifests(document for document in documents if document)

    return run


def values_file(name: str) -> dict[str, Any]:
    """One of the chart's ci/ values files."""
    return yaml.safe_load((CHART / "ci" / name).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def defaults(render: Render) -> Manifests:
    """The chart rendered with its defaults."""
    return render({})


@pytest.fixture(scope="module")
def everything(render: Render) -> Manifests:
    """Every option on (`ci/all-options-values.yaml`)."""
    return render(values_file("all-options-values.yaml"))


@pytest.fixture(scope="module")
def external(render: Render) -> Manifests:
    """The production shape: external data stores (`ci/external-stores-values.yaml`)."""
    return render(values_file("external-stores-values.yaml"))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def chart_with_values(tmp_path: Path, override: dict[str, Any]) -> Path:
    """A copy of the chart whose values.yaml is the defaults merged with `override` (lint
    takes no values file, so this is how a values file is linted)."""
    chart = tmp_path / "llm-gateway"
    shutil.copytree(CHART, chart)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    (chart / "values.yaml").write_text(yaml.safe_dump(deep_merge(defaults, override)))
    return chart


def errors(result: dict[str, Any]) -> list[str]:
    """Lint messages of error severity (3), as `path`."""
    return [m["Path"] for m in result["Messages"] if m["Severity"] >= 3]
