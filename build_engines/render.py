"""Fill `config.pbtxt` templates: one template per Triton model, shared by every target.

Like upstream's `fill_template.py`, placeholders are `${name}`; unlike it, a placeholder
without a value or a value without a placeholder is an error, so a renamed key cannot
silently leave `${...}` in a config that Triton would reject at load time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_contract.trtllm_backend import TensorSpec

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
"""Any `${...}`: a name the values cannot hold is refused as a placeholder without a value."""


class TemplateError(ValueError):
    pass


def render(template: str, values: Mapping[str, object]) -> str:
    wanted = set(PLACEHOLDER.findall(template))
    missing = wanted - values.keys()
    unused = values.keys() - wanted
    if missing or unused:
        raise TemplateError(
            f"template placeholders without values: {sorted(missing)}; "
            f"values without placeholders: {sorted(unused)}"
        )
    return PLACEHOLDER.sub(lambda match: _pbtxt_value(values[match.group(1)]), template)


def render_template(name: str, values: Mapping[str, object]) -> str:
    template = resources.files("build_engines.templates").joinpath(f"{name}.pbtxt").read_text()
    return render(template, values)


def parameters_block(parameters: Mapping[str, object]) -> str:
    """Triton's string-valued model parameters, the only kind the backends read."""
    lines = []
    for key, value in parameters.items():
        text = _escape(_pbtxt_value(value))
        lines.append(f'parameters: {{ key: "{key}" value: {{ string_value: "{text}" }} }}')
    return "\n".join(lines)


def tensors_block(specs: Iterable[TensorSpec]) -> str:
    """An `input [...]` or `output [...]` list's entries, one tensor per line."""
    lines = []
    for spec in specs:
        dims = ", ".join(str(dim) for dim in spec.dims)
        fields = [f'name: "{spec.name}"', f"data_type: {spec.data_type}", f"dims: [ {dims} ]"]
        if spec.scalar:
            fields.append("reshape: { shape: [ ] }")
        if spec.optional:
            fields.append("optional: true")
        if spec.ragged:
            fields.append("allow_ragged_batch: true")
        lines.append(f"  {{ {' '.join(fields)} }}")
    return ",\n".join(lines)


def _pbtxt_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
