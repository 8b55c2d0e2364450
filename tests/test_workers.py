"""The modules `tests/workers.py` schedules as heavy exist: a moved one would run side by
side with the others again, and nothing would say so."""

from __future__ import annotations

from pathlib import Path

from tests.workers import HEAVY

REPOSITORY = Path(__file__).resolve().parent.parent


def test_every_heavy_module_is_a_test_module_of_the_suite() -> None:
    assert [path for path in sorted(HEAVY) if not (REPOSITORY / path).is_file()] == []
    assert all(Path(path).name.startswith("test_") for path in HEAVY)
