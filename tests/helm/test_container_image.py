"""The gateway's Dockerfile: pinned base and dependencies, non-root, the entry point the
chart runs; and the Triton image the chart runs."""

from __future__ import annotations

import re
import tomllib

import yaml  # type: ignore[import-untyped,unused-ignore]
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helm.conftest import CHART, REPOSITORY

DOCKERFILE = (REPOSITORY / "Dockerfile").read_text()
LOCK = REPOSITORY / "deploy" / "requirements.lock"


def locked() -> dict[str, str]:
    """The image's pinned dependencies: canonical name → version."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_base_image_is_pinned_to_a_patch_release() -> None:
    [base] = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base


def test_the_image_installs_only_the_pinned_dependencies_and_checks_them() -> None:
    assert "COPY deploy/requirements.lock" in DOCKERFILE
    assert "pip install --no-deps -r requirements.lock" in DOCKERFILE
    assert "pip install --no-deps -e ." in DOCKERFILE
    assert "pip check" in DOCKERFILE
    assert all(
        re.fullmatch(r"[a-z0-9.-]+==[\w.+!-]+", line)
        for line in LOCK.read_text().splitlines()
        if line and not line.startswith("#")
    )


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    pins = locked()
    for line in project["dependencies"]:
        requirement = Requirement(line)
        version = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), (requirement, version)


def test_the_image_runs_as_a_non_root_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


def test_the_chart_runs_the_images_entry_point_as_the_same_user() -> None:
    assert 'ENTRYPOINT ["gateway"]' in DOCKERFILE
    deployment = (CHART / "templates" / "gateway-deployment.yaml").read_text()
    assert 'args: ["serve"' in deployment
    assert "runAsUser: 10001" in deployment
    assert re.search(r"^USER 10001$", DOCKERFILE, re.MULTILINE)


def test_the_triton_image_is_the_one_build_engines_targets() -> None:
    from build_engines.trtllm_engine import TRITON_TRTLLM_IMAGE

    image = yaml.safe_load((CHART / "values.yaml").read_text())["triton"]["image"]
    assert f"{image['repository']}:{image['tag']}" == TRITON_TRTLLM_IMAGE
