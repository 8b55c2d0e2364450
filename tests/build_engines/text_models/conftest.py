"""Fixtures for the text-path models: the project's small Llama-style tokenizer laid out as
in a generated repository, and each Python model behind a stand-in for
`triton_python_backend_utils` with a scripted generation model."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from build_engines.text_models.tokenizer import TextTokenizer
from build_engines.tokenizer_asset import ASSET_DIR
from tests.build_engines.text_models.doubles import FakeGenerationModel, fake_triton_utils
from tests.python_backend_doubles import FakeLogger

MAX_INPUT_LEN = 64
MAX_OUTPUT_LEN = 50
GENERATION_MODEL = "p_tensorrt_llm"
MakeModel = Callable[..., Any]


@pytest.fixture(scope="session")
def tokenizer() -> TextTokenizer:
    return TextTokenizer.from_dir(ASSET_DIR)


@pytest.fixture
def model_repository(tmp_path: Path) -> Path:
    """The tokenizer where the repository writer puts it: in the generation model's folder."""
    shutil.copytree(ASSET_DIR, tmp_path / GENERATION_MODEL / "tokenizer")
    return tmp_path


@pytest.fixture
def generation() -> FakeGenerationModel:
    return FakeGenerationModel()


@pytest.fixture
def pb_utils(monkeypatch: pytest.MonkeyPatch, generation: FakeGenerationModel) -> types.ModuleType:
    """Install the stand-in; the model modules are imported afresh against it."""
    module = fake_triton_utils(generation)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    for component in ("preprocessing", "postprocessing", "bls"):
        monkeypatch.delitem(sys.modules, f"build_engines.text_models.{component}", raising=False)
    monkeypatch.setattr(FakeLogger, "lines", [])
    return module


def model_args(model_dir: Path, parameters: dict[str, object]) -> dict[str, str]:
    """`initialize` arguments as Triton passes them: parameters as string values."""
    config = {
        "name": model_dir.name,
        "parameters": {key: {"string_value": str(value)} for key, value in parameters.items()},
    }
    return {
        "model_name": model_dir.name,
        "model_config": json.dumps(config),
        "model_repository": str(model_dir),
    }


@pytest.fixture
def make_model(pb_utils: types.ModuleType, model_repository: Path) -> Iterator[MakeModel]:
    """Initialize `component`'s TritonPythonModel with test parameters changed by keyword."""
    models: list[Any] = []

    def make(component: str, **changes: object) -> Any:
        parameters: dict[str, object] = {
            "tokenizer_dir": f"../{GENERATION_MODEL}/tokenizer",
            "generation_model": GENERATION_MODEL,
            "max_input_len": MAX_INPUT_LEN,
            "max_output_len": MAX_OUTPUT_LEN,
            "cancellation_check_period_ms": 0,
            **changes,
        }
        model_dir = model_repository / f"p_{component}"
        model_dir.mkdir(exist_ok=True)
        module = importlib.import_module(f"build_engines.text_models.{component}")
        model = module.TritonPythonModel()
        model.initialize(model_args(model_dir, parameters))
        models.append(model)
        return model

    yield make
    for model in models:
        if hasattr(model, "finalize"):
            model.finalize()
