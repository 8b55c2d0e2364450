"""Stand-in for `torch.onnx.export` with torch 2.13's keyword-only parameters: it writes,
in place of an ONNX graph, a JSON record of what it was asked to export (the stand-in
TensorRT parser reads it), and refuses a parameter the real one does not have."""

from __future__ import annotations

import json
from typing import Any

from torch import Tensor

MARKER = "stand-in onnx graph"


def export(
    model: Any,
    args: tuple[Any, ...] = (),
    f: str | None = None,
    *,
    kwargs: dict[str, Any] | None = None,
    export_params: bool = True,
    verbose: bool | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    opset_version: int | None = None,
    dynamic_axes: dict[str, Any] | None = None,
    keep_initializers_as_inputs: bool = False,
    dynamo: bool = True,
    **more: Any,
) -> None:
    if more:
        raise TypeError(f"export() got unexpected keyword arguments {sorted(more)}")
    if f is None:
        raise ValueError("the stand-in needs a file to write")
    record = {
        "marker": MARKER,
        "module": type(model).__name__,
        "example_inputs": [[list(a.shape), a.dtype] for a in args if isinstance(a, Tensor)],
        "input_names": input_names,
        "output_names": output_names,
        "opset_version": opset_version,
        "dynamic_axes": dynamic_axes,
        "dynamo": dynamo,
    }
    with open(f, "w") as file:
        json.dump(record, file)
