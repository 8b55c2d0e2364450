"""The gateway keeps what start-up allocated out of the garbage collector's full passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.app import create_app, freeze_startup_heap
from gateway.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_startup_hook_moves_the_heap_out_of_the_collectors_generations(
    unfrozen: None,
) -> None:
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0


def test_the_app_runs_the_hook_at_startup() -> None:
    assert freeze_startup_heap in create_app(Settings()).on_startup
