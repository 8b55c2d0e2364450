"""uv.lock is the one source of installed versions: it agrees with pyproject.toml, pins every
package with hashes, and the pinned uv that reads it is the one pyproject.toml requires."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPOSITORY = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
LOCK = tomllib.loads((REPOSITORY / "uv.lock").read_text())


def declared() -> set[tuple[str, str, str, str]]:
    """pyproject.toml's requirements as (name, extras, specifier, extra they belong to)."""
    groups = {"": PROJECT["project"]["dependencies"]} | PROJECT["project"]["optional-dependencies"]
    return {
        (
            canonicalize_name(requirement.name),
            ",".join(sorted(requirement.extras)),
            str(requirement.specifier),
            extra,
        )
        for extra, lines in groups.items()
        for requirement in map(Requirement, lines)
    }


def locked_for_the_project() -> set[tuple[str, str, str, str]]:
    [project] = [package for package in LOCK["package"] if package["name"] == "llm-gateway"]
    requirements = set()
    for entry in project["metadata"]["requires-dist"]:
        extra = re.fullmatch(r"extra == '([\w-]+)'", entry.get("marker", "extra == 'none'"))
        assert extra is not None, entry
        specifier = str(Requirement(f"x{entry.get('specifier', '')}").specifier)
        requirements.add(
            (
                canonicalize_name(entry["name"]),
                ",".join(sorted(entry.get("extras", []))),
                specifier,
                "" if extra.group(1) == "none" else extra.group(1),
            )
        )
    return requirements


def test_the_lock_was_made_from_the_requirements_in_pyproject() -> None:
    assert locked_for_the_project() == declared()


def test_every_locked_package_is_pinned_to_one_version_with_hashes() -> None:
    for package in LOCK["package"]:
        if package["name"] == "llm-gateway":
            continue
        assert re.fullmatch(r"[\w.+!-]+", package["version"]), package["name"]
        files = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
        assert files, package["name"]
        assert all(file["hash"].startswith("sha256:") for file in files), package["name"]


def test_the_bootstrap_uv_is_the_version_pyproject_requires() -> None:
    pinned = (REPOSITORY / "scripts" / "uv.requirements").read_text()
    [version] = re.findall(r"^uv==(\S+)", pinned, re.MULTILINE)
    assert PROJECT["tool"]["uv"]["required-version"] == f"=={version}"
    assert "--hash=sha256:" in pinned


def test_installs_never_resolve_they_only_sync_the_lock() -> None:
    bootstrap = (REPOSITORY / "scripts" / "bootstrap.sh").read_text()
    assert re.search(r"sync .*--locked", bootstrap)
    assert "pip install" not in bootstrap
