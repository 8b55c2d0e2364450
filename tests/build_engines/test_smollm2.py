"""SmolLM2's GGUF: found in the installed wheel, checked, converted to the twin's layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from build_engines import smollm2
from build_engines.cli import main as build_engines_main
from build_engines.pinned_wheel import WeightsUnavailable, sha256_of
from tests.smollm2_tokenizer import smollm2_reader


def test_the_installed_file_is_the_pinned_one() -> None:
    path = smollm2.gguf_path()
    assert path.name == smollm2.GGUF_NAME
    assert sha256_of(path) == smollm2.GGUF_SHA256


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailable, match="uv sync --extra twin"):
        smollm2.gguf_path()


def test_a_corrupt_file_is_refused_saying_how_to_reinstall_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / smollm2.GGUF_NAME).write_bytes(b"GGUF" + b"\0" * 64)
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(WeightsUnavailable, match=r"is corrupt .*--reinstall-package"):
        smollm2.gguf_path()


def test_build_engines_reports_missing_weights_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    arguments = ["--target", "cpu", "--precision", "int8", "--output", str(tmp_path)]
    assert build_engines_main(arguments) == 2
    assert capsys.readouterr().err.startswith("build-engines: SmolLM2's weights are not installed")
    assert not any(tmp_path.iterdir())


def rotate_adjacent_pairs(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """llama.cpp's rotation: pairs (2i, 2i + 1)."""
    cos, sin = np.cos(angles), np.sin(angles)
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    first, second = pairs[..., 0], pairs[..., 1]
    return np.stack((first * cos - second * sin, second * cos + first * sin), -1).reshape(x.shape)


def rotate_halves(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Hugging Face's (and the twin's) rotation: pairs (i, i + d/2)."""
    cos, sin = np.cos(angles), np.sin(angles)
    first, second = np.split(x, 2, axis=-1)
    return np.concatenate((first * cos - second * sin, second * cos + first * sin), -1)


def test_unpermuted_projections_rotated_by_halves_give_llama_cpps_attention_scores() -> None:
    """Scores of Q/K as stored, rotated llama.cpp's way, equal those of the un-permuted
    projections rotated the twin's way; rotating the stored weights by halves does not."""
    rng = np.random.default_rng(0)
    heads, head_dim, hidden = 3, 8, 24
    stored_q = rng.standard_normal((heads * head_dim, hidden))
    stored_k = rng.standard_normal((heads * head_dim, hidden))
    x = rng.standard_normal((5, hidden))
    positions = np.arange(5)[:, None, None]
    angles = positions * 100000.0 ** (-np.arange(head_dim // 2) * 2 / head_dim)

    def scores(q_weight: np.ndarray, k_weight: np.ndarray, rotate: object) -> np.ndarray:
        q = rotate((x @ q_weight.T).reshape(5, heads, head_dim), angles)  # type: ignore[operator]
        k = rotate((x @ k_weight.T).reshape(5, heads, head_dim), angles)  # type: ignore[operator]
        return np.einsum("qhd,khd->hqk", q, k)

    reference = scores(stored_q, stored_k, rotate_adjacent_pairs)
    unpermuted = scores(
        smollm2.unpermute_rotary(stored_q, heads),
        smollm2.unpermute_rotary(stored_k, heads),
        rotate_halves,
    )
    np.testing.assert_allclose(unpermuted, reference, atol=1e-9)
    assert not np.allclose(scores(stored_q, stored_k, rotate_halves), reference, atol=1e-3)


@pytest.mark.slow  # parsing SmolLM2's GGUF file takes seconds
def test_the_files_shape_is_smollm2_135m() -> None:
    shape = smollm2.gguf_shape(smollm2_reader())
    assert (shape.num_hidden_layers, shape.hidden_size, shape.intermediate_size) == (30, 576, 1536)
    assert (shape.num_attention_heads, shape.num_key_value_heads, shape.head_dim) == (9, 3, 64)
    assert (shape.vocab_size, shape.rope_theta) == (49152, 100000.0)
