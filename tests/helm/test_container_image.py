"""The gateway's Dockerfile: pinned base and dependencies, non-root, the entry point the
chart runs; and the Triton image the chart runs."""

from __future__ import annotations

import re

import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.helm.conftest import CHART, REPOSITORY

DOCKERFILE = (REPOSITORY / "Dockerfile").read_text()


def test_the_base_image_is_pinned_to_a_patch_release() -> None:
    [base] = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base


def test_the_image_installs_the_locked_runtime_dependencies_hash_checked() -> None:
    assert "COPY scripts/uv.requirements pyproject.toml uv.lock ./" in DOCKERFILE
    assert "pip install --no-deps --require-hashes -r uv.requirements" in DOCKERFILE
    assert "uv export --frozen --no-dev --no-emit-project" in DOCKERFILE
    assert "pip install --no-deps --require-hashes -r requirements.txt" in DOCKERFILE
    assert "pip install --no-deps -e ." in DOCKERFILE
    assert "pip check" in DOCKERFILE


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
