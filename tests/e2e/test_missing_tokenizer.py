"""A catalog model whose tokenizer is missing stops `gateway serve` and `gateway up` at once,
with one line naming the model, the missing file and what builds it: no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build_engines import minilm
from build_engines.tokenizer_asset import ASSET_DIR
from llm_contract.embeddings import EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS
from local_runtime.ports import free_port

FP16_TWIN = "@twin/smollm2-135m-instruct/llama-2-7b-chat-fp16"


@pytest.fixture
def repository_without_the_fp16_tokenizer(tmp_path: Path) -> Path:
    """A model repository as the gateway reads it: each generation model's tokenizer folder,
    the fp16 one deleted (as a partial copy or a failed build leaves it)."""
    repository = tmp_path / "model_repository"
    for spec in ENGINE_SPECS.values():
        shutil.copytree(ASSET_DIR, repository / spec.generation_model / "tokenizer")
    embedding_tokenizer = repository / EMBEDDING_MODEL / "tokenizer"
    embedding_tokenizer.mkdir(parents=True)
    shutil.copy2(minilm.model_folder(weights=False) / "tokenizer.json", embedding_tokenizer)
    shutil.rmtree(repository / ENGINE_SPECS["fp16"].generation_model / "tokenizer")
    return repository


def gateway_cli(tmp_path: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_USAGE_JOURNAL_DIR": str(tmp_path / "usage-journal"),
        "GATEWAY_ADMIN_TOKEN": "test-admin-token-0123456789abcdef0123456789",
        "GATEWAY_PORT": str(free_port()),
        "TRITON_GRPC_URL": f"127.0.0.1:{free_port()}",
        "TRITON_HTTP_URL": f"http://127.0.0.1:{free_port()}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway", *arguments],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_names_the_missing_tokenizer(
    result: subprocess.CompletedProcess[str], model: str, tokenizer_dir: Path, builder: str
) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1, result.stderr
    assert error[0].startswith(f"gateway: model '{model}': its tokenizer ")
    assert str(tokenizer_dir / "tokenizer.json") in error[0]
    assert builder in error[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["serve", "up"])
def test_a_missing_twin_tokenizer_stops_the_gateway_naming_it_and_the_cpu_build(
    tmp_path: Path, repository_without_the_fp16_tokenizer: Path, command: str
) -> None:
    repository = repository_without_the_fp16_tokenizer
    result = gateway_cli(tmp_path, command, GATEWAY_MODEL_REPOSITORY=str(repository))
    assert_names_the_missing_tokenizer(
        result,
        FP16_TWIN,
        repository / ENGINE_SPECS["fp16"].generation_model / "tokenizer",
        f"build-engines --target cpu --precision all --output {repository}",
    )


def test_a_catalog_file_model_without_its_tokenizer_names_the_engine_build(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "models" / "llama2_7b_chat_fp16_tensorrt_llm" / "tokenizer"
    catalog = tmp_path / "catalog.json"
    entry = {
        "name": "@cf/meta/llama-2-7b-chat-fp16", "triton_model": "llama2_7b_chat_fp16_tensorrt_llm",
        "tokenizer_dir": str(missing), "max_input_tokens": 3072, "max_output_tokens": 2500,
        "precision": "fp16", "description": "",
    }  # fmt: skip
    catalog.write_text(json.dumps({"models": [entry]}))
    result = gateway_cli(tmp_path, "serve", GATEWAY_CATALOG_FILE=str(catalog))
    assert_names_the_missing_tokenizer(
        result,
        "@cf/meta/llama-2-7b-chat-fp16",
        missing,
        "build-engines --target trtllm --precision fp16",
    )
    assert "engine build job" in result.stderr
    assert "GATEWAY_CATALOG_FILE" in result.stderr


def test_an_unreadable_catalog_file_stops_the_gateway_naming_it(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"models": [')
    result = gateway_cli(tmp_path, "serve", GATEWAY_CATALOG_FILE=str(catalog))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(f"gateway: catalog file {catalog}: ")
    assert "Traceback" not in result.stdout + result.stderr
