"""An exclusive lock on a file for the length of a block: pytest-xdist's workers share some
one-off work (the Helm venv, SmolLM2's repository), which one does while the others wait."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
