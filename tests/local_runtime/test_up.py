"""What `gateway up` decides before it starts anything: which twins it must build."""

from __future__ import annotations

import json
from pathlib import Path

from llm_contract.embeddings import EMBEDDING_MODEL
from llm_contract.engines import ENGINE_SPECS
from llm_contract.model_repository import DEFAULT_TWIN, TWIN_DESCRIPTION_FILE
from local_runtime.up import _twins_to_build

GENERATION_MODELS = [spec.generation_model for spec in ENGINE_SPECS.values()]


def repository_of(tmp_path: Path, *models: str, twin: str = DEFAULT_TWIN.model) -> Path:
    for name in models:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.pbtxt").write_text("")
        description = json.dumps({"model": twin, "title": "t"})
        (tmp_path / name / TWIN_DESCRIPTION_FILE).write_text(description)
    return tmp_path


def test_a_default_build_made_before_the_embedding_twin_gets_it_alone(tmp_path: Path) -> None:
    assert _twins_to_build(repository_of(tmp_path, *GENERATION_MODELS)) == "none"


def test_a_random_build_is_kept_without_an_embedding_twin(tmp_path: Path) -> None:
    assert _twins_to_build(repository_of(tmp_path, *GENERATION_MODELS, twin="random")) is None


def test_a_repository_with_every_twin_is_kept(tmp_path: Path) -> None:
    assert _twins_to_build(repository_of(tmp_path, *GENERATION_MODELS, EMBEDDING_MODEL)) is None


def test_a_missing_text_twin_is_built_with_the_rest(tmp_path: Path) -> None:
    repository = repository_of(tmp_path, GENERATION_MODELS[0], EMBEDDING_MODEL)
    assert _twins_to_build(repository) == "all"
