"""The engine build Job's copy of the builder out of the gateway image, run for real: `/app`
as the Dockerfile fills it, the Job's `tools` init container copying out of it, then the Job's
build script in a Python that sees only the copied packages (plus what Triton's TensorRT-LLM
image has installed: NumPy, tokenizers and TensorRT-LLM, here its stand-ins)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from llm_contract.engines import ENGINE_SPECS
from tests.build_engines.stand_in_build import STAND_INS, write_hf_checkpoint
from tests.helm.conftest import REPOSITORY, Manifests, Render

DOCKERFILE = (REPOSITORY / "Dockerfile").read_text()
HOPPER = "90"


@pytest.fixture(scope="module")
def manifests(render: Render) -> Manifests:
    return render({})


def job_containers(manifests: Manifests) -> dict[str, dict[str, Any]]:
    [job] = [j for j in manifests.of_kind("Job") if "-engine-build-" in j["metadata"]["name"]]
    pod = job["spec"]["template"]["spec"]
    return {c["name"]: c for c in [*pod["initContainers"], *pod["containers"]]}


def image_app(destination: Path) -> Path:
    """`/app` as the Dockerfile fills it: every COPY from this checkout, `.dockerignore`d
    caches left out."""
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, re.MULTILINE)
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE, re.MULTILINE):
        *sources, target = line.split()
        for source in map(REPOSITORY.joinpath, sources):
            if source.is_dir():
                shutil.copytree(
                    source,
                    destination / target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                assert target.endswith("/"), line
                (destination / target).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / target / source.name)
    return destination


def in_folders(text: str, folders: dict[str, Path]) -> str:
    """`text` with the pod's absolute paths (`/tools`, `/models/…`) moved under `folders`."""
    pattern = "|".join(map(re.escape, folders))
    return re.sub(rf"(?<![\w./-])({pattern})(?=[/\s\"']|$)", lambda m: str(folders[m[1]]), text)


def image_python(folder: Path) -> Path:
    """`python3` as Triton's TensorRT-LLM image has it: NumPy, tokenizers and TensorRT-LLM
    installed (this environment's site-packages, without its `.pth` files, so not this
    checkout; TensorRT-LLM's stand-ins), nothing of this project."""
    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], str(STAND_INS)]
    shim = folder / "python3"
    shim.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{os.pathsep.join(dict.fromkeys(site))}" '
        f'exec {sys.executable} -S "$@"\n'
    )
    shim.chmod(0o755)
    return folder


def test_the_image_carries_the_gateway_the_contract_and_the_builder_not_the_local_runtime(
    tmp_path: Path,
) -> None:
    app = image_app(tmp_path / "app")
    packages = {path.name for path in app.iterdir() if (path / "__init__.py").is_file()}
    assert packages == {"gateway", "llm_contract", "build_engines"}


def test_the_job_builds_the_engines_with_only_the_packages_it_copied_out_of_the_image(
    manifests: Manifests, tmp_path: Path
) -> None:
    containers = job_containers(manifests)
    folders = {
        "/app": image_app(tmp_path / "app"),
        "/tools": tmp_path / "tools",
        "/models": tmp_path / "models",
        "/work": tmp_path / "work",
        "/checkpoint": tmp_path / "checkpoint",
    }
    folders["/tools"].mkdir()
    write_hf_checkpoint(tmp_path / "checkpoint" / "Llama-2-7b-chat-hf")
    copy = containers["tools"]["command"]
    subprocess.run([*copy[:-1], in_folders(copy[-1], folders)], check=True, timeout=60)
    assert sorted(path.name for path in folders["/tools"].iterdir()) == [
        "build_engines",
        "llm_contract",
    ]
    (folders["/tools"] / "llm_contract" / "COPIED-BY-THE-JOB").touch()

    build = containers["build"]
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTHON")},
        **{item["name"]: in_folders(item["value"], folders) for item in build["env"]},
        "PATH": os.pathsep.join(
            [str(image_python(tmp_path)), str(STAND_INS / "bin"), os.environ["PATH"]]
        ),
        "TRTLLM_STAND_IN_SM": HOPPER,
    }
    result = subprocess.run(
        [*build["command"][:-1], in_folders(build["command"][-1], folders)],
        cwd=in_folders(build["workingDir"], folders),
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    built = re.findall(r"--precision (\w+)", build["command"][-1])
    assert built
    for spec in map(ENGINE_SPECS.__getitem__, built):
        bls = folders["/models"] / spec.triton_model("bls") / "1"
        assert (bls / "llm_contract" / "COPIED-BY-THE-JOB").is_file()
        assert (folders["/models"] / spec.generation_model / "1" / "rank0.engine").is_file()
        assert list((folders["/models"] / ".engines-ready" / spec.precision).iterdir())
