"""Stand-in for the TensorRT Python API that `build_engines.embedding_engine.compile_plan`
uses (see README.md). The parser reads the stand-in export's record; the "plan" it builds is
JSON describing the network's inputs, the optimization profile and the flags, so a test can
read what a real build would have been asked for. Like TensorRT, a profile must give every
input of the network a shape, and min <= opt <= max."""

from __future__ import annotations

import enum
import itertools
import json
from typing import Any

__version__ = "10.13.0"


class Logger:
    WARNING = 2

    def __init__(self, severity: int) -> None:
        self.severity = severity


class BuilderFlag(enum.Enum):
    FP16 = "FP16"
    INT8 = "INT8"


class _Network:
    def __init__(self) -> None:
        self.inputs: list[str] = []
        self.outputs: list[str] = []


class OnnxParser:
    def __init__(self, network: _Network, logger: Logger) -> None:
        self._network = network
        self._errors: list[str] = []

    def parse(self, model: bytes) -> bool:
        try:
            record = json.loads(model)
        except ValueError:
            self._errors.append("not an ONNX graph of the stand-in export")
            return False
        self._network.inputs = list(record["input_names"])
        self._network.outputs = list(record["output_names"])
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[list[int]]] = {}

    def set_shape(self, name: str, minimum: Any, optimum: Any, maximum: Any) -> None:
        dims = [list(minimum), list(optimum), list(maximum)]
        for low, high in itertools.pairwise(dims):
            if any(a > b for a, b in zip(low, high, strict=True)):
                raise ValueError(f"profile of {name}: {dims} is not min <= opt <= max")
        self.shapes[name] = dims


class _Config:
    def __init__(self) -> None:
        self.flags: list[str] = []
        self.profiles: list[_Profile] = []

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.append(flag.value)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


class Builder:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> _Network:
        return _Network()

    def create_builder_config(self) -> _Config:
        return _Config()

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
        for profile in config.profiles:
            unset = set(network.inputs) - set(profile.shapes)
            if unset:
                return None  # TensorRT logs "… has no shape in profile" and builds nothing
        plan = {
            "inputs": network.inputs,
            "outputs": network.outputs,
            "flags": config.flags,
            "profiles": [profile.shapes for profile in config.profiles],
        }
        return json.dumps(plan).encode()
