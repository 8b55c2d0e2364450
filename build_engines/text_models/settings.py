"""What a text-path model reads from Triton at load time: its string parameters and its own
folder, against which a relative `tokenizer_dir` resolves (the repository writer points it
at the generation model's `tokenizer/`, so one copy serves every model)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "off"})


class SettingsError(ValueError):
    """A parameter in config.pbtxt is missing or malformed: the model refuses to load."""


@dataclass(frozen=True)
class ModelArgs:
    """The `args` Triton passes to `initialize`, with parameters as plain strings."""

    name: str
    directory: Path
    parameters: Mapping[str, str]

    @classmethod
    def from_triton(cls, args: Mapping[str, str]) -> ModelArgs:
        config = json.loads(args["model_config"])
        parameters = {
            key: str(value.get("string_value", ""))
            for key, value in config.get("parameters", {}).items()
        }
        return cls(
            name=args.get("model_name") or str(config.get("name", "")),
            directory=Path(args.get("model_repository", ".")),
            parameters=parameters,
        )

    def text(self, key: str, default: str | None = None) -> str:
        value = self.parameters.get(key, default)
        if value is None or value == "":
            raise SettingsError(f"parameter {key!r} is required")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.parameters.get(key, "").strip().lower()
        if not value:
            return default
        if value in TRUE_WORDS | FALSE_WORDS:
            return value in TRUE_WORDS
        raise SettingsError(f"parameter {key!r} must be true or false, got {value!r}")

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self.parameters.get(key, "").strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise SettingsError(f"parameter {key!r} must be an integer, got {value!r}") from None

    def path(self, key: str) -> Path:
        """An absolute path as is; a relative one from this model's folder."""
        return self.directory / self.text(key)
