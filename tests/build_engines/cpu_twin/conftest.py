"""Fixtures for the CPU twin: a small network, a running scheduler, and the Triton model
behind a stand-in `triton_python_backend_utils`."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from build_engines.cpu_twin.config import TwinConfig
from build_engines.cpu_twin.network import LlamaNetwork, random_weights
from build_engines.cpu_twin.scheduler import Scheduler, SchedulingPolicy
from build_engines.cpu_twin.weights import save_weights
from llm_contract import trtllm_backend
from tests.build_engines.cpu_twin.doubles import (
    SMALL_CONFIG,
    SMALL_SHAPE,
    RecordingEvents,
    small_network,
)
from tests.python_backend_doubles import FakeLogger, FakeMetricFamily, python_backend_utils

MakeScheduler = Callable[..., Scheduler]


@pytest.fixture(scope="session")
def network() -> LlamaNetwork:
    return small_network("int8")


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder whose version 1 holds SMALL_CONFIG's weights file."""
    model_dir = tmp_path_factory.mktemp("twin")
    (model_dir / "1").mkdir()
    weights = random_weights(SMALL_SHAPE, seed=7)
    save_weights(model_dir / "1" / SMALL_CONFIG.weights_file, weights, "int8")
    return model_dir


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
def make_scheduler(network: LlamaNetwork, events: RecordingEvents) -> Iterator[MakeScheduler]:
    """Start a scheduler with the given policy fields; every one is closed after the test."""
    started: list[Scheduler] = []

    def make(**policy: Any) -> Scheduler:
        settings = {"max_inflight_requests": 8, "cancellation_check_period_s": 0.01, **policy}
        scheduler = Scheduler(network, SchedulingPolicy(**settings), events)
        scheduler.start()
        started.append(scheduler)
        return scheduler

    yield make
    for scheduler in started:
        scheduler.close()


@pytest.fixture
def scheduler(make_scheduler: MakeScheduler) -> Scheduler:
    return make_scheduler()


@pytest.fixture
def pb_utils(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Install the stand-in and import `triton_model` afresh against it."""
    module = python_backend_utils()
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    monkeypatch.delitem(sys.modules, "build_engines.cpu_twin.triton_model", raising=False)
    monkeypatch.setattr(FakeLogger, "lines", [])
    monkeypatch.setattr(FakeMetricFamily, "created", {})
    return module


def model_args(
    config: TwinConfig, name: str = "twin", model_dir: Path = Path("twin")
) -> dict[str, str]:
    """`initialize` arguments as Triton passes them: parameters as string values."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    network = fields.pop("network")
    fields.update(dataclasses.asdict(network))
    parameters = {key: {"string_value": str(value)} for key, value in fields.items()}
    parameters |= {key: {"string_value": ""} for key in trtllm_backend.REQUIRED_PARAMETERS}
    model_config = {
        "name": name,
        "input": [{"name": spec.name, "data_type": spec.data_type}
                  for spec in trtllm_backend.INPUTS],
        "output": [{"name": spec.name, "data_type": spec.data_type}
                   for spec in trtllm_backend.OUTPUTS],
        "parameters": parameters,
    }  # fmt: skip
    return {
        "model_name": name,
        "model_repository": str(model_dir),
        "model_version": "1",
        "model_config": json.dumps(model_config),
    }


@pytest.fixture
def make_model(pb_utils: types.ModuleType, small_model_dir: Path) -> Iterator[Callable[..., Any]]:
    """Initialize a TritonPythonModel with SMALL_CONFIG changed by keyword; finalized after."""
    triton_model = importlib.import_module("build_engines.cpu_twin.triton_model")
    models: list[Any] = []

    def make(**changes: Any) -> Any:
        model = triton_model.TritonPythonModel()
        config = dataclasses.replace(SMALL_CONFIG, **changes)
        model.initialize(model_args(config, model_dir=small_model_dir))
        models.append(model)
        return model

    yield make
    for model in models:
        model.finalize()


@pytest.fixture
def model(make_model: Callable[..., Any]) -> Any:
    return make_model()
