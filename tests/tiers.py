"""The suite's tiers, set at collection so that no test has to remember its own.

- `unit`: runs in the pytest process alone, in milliseconds: no tritonserver, no gateway or
  CLI process, no browser, no Helm, no model repository build. It may use the PostgreSQL and
  Redis servers the machine always runs. `pytest -m unit` is the first loop.
- `slow`: takes seconds (a process of its own, a fault it must wait out, a benchmark).
  `pytest -m "not slow"` is the inner loop: the unit tests and the end-to-end tests on the
  shared gateway and Triton.
- Everything else needs the shared servers but is quick once they run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

BESIDE_THE_CODE = frozenset(
    {"architecture", "backend", "browser", "docs", "e2e", "helm", "reliability"}
)
"""Folders of tests that exercise the product from outside, beside those that mirror it."""

SLOW_FOLDERS = frozenset({"bench", "browser"})
"""Every test here takes seconds: benchmarks run, Chromium drives pages."""

SERVERS = frozenset(
    {
        "cpu_model_repository",
        "database_factory",
        "gateway",
        "gateway_factory",
        "gateway_without_backend",
        "helm_python",
        "module_gateway_factory",
        "own_triton",
        "page",
        "redis_server",
        "smollm2_gateway",
        "smollm2_model_repository",
        "smollm2_triton",
        "triton",
        "trtllm_repository",
    }
)
"""Fixtures that start a process or build a model repository."""


def folder_of(item: pytest.Item) -> str:
    relative = item.path.resolve().relative_to(TESTS)
    return relative.parts[0] if len(relative.parts) > 1 else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = folder_of(item)
        if folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") is not None or folder in BESIDE_THE_CODE:
            continue
        if SERVERS.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.unit)
