"""What `gateway up` decides before it starts anything: whether the twins must be built."""

from __future__ import annotations

import json
from pathlib import Path

from llm_contract.embeddings import EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import TWIN_DESCRIPTION_FILE
from local_runtime.up import _twins_to_build


def repository_of(tmp_path: Path, *models: str) -> Path:
    for name in models:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.pbtxt").write_text("")
        (tmp_path / name / TWIN_DESCRIPTION_FILE).write_text(
            json.dumps({"model": "m", "title": "t"})
        )
    return tmp_path


GENERATION_MODELS = [spec.generation_model for spec in ENGINE_SPECS.values()]


def test_a_repository_built_before_the_embedding_twin_is_built_again(tmp_path: Path) -> None:
    assert _twins_to_build(repository_of(tmp_path, *GENERATION_MODELS))


def test_a_repository_with_every_twin_is_kept(tmp_path: Path) -> None:
    assert not _twins_to_build(repository_of(tmp_path, *GENERATION_MODELS, EMBEDDING_MODEL))


def test_a_missing_text_twin_is_built(tmp_path: Path) -> None:
    assert _twins_to_build(repository_of(tmp_path, GENERATION_MODELS[0], EMBEDDING_MODEL))
