"""How the suite is shared between pytest-xdist's workers (`scripts/test` runs two).

A module is a unit of work, so its module-scoped gateways start once. The `HEAVY` modules,
which run many processes or streams at once or measure the machine's load, are one unit:
they run one after another on one worker, never two side by side. The heaviest units are
handed out first and the unit tests last, so that the two workers end together.

(xdist's own `--dist loadgroup` marks groups by renaming tests, which pytest 9 no longer
allows; hence a list of modules.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from xdist.scheduler import LoadScopeScheduling

HEAVY = frozenset(
    {
        "tests/backend/test_bls_stub_health.py",
        "tests/bench/test_bench_smoke.py",
        "tests/bench/test_gpu_smoke.py",
        "tests/bench/test_soak_smoke.py",
        "tests/e2e/test_big_prompts.py",
        "tests/e2e/test_metering_exactness.py",
        "tests/reliability/test_cancellation_storm.py",
        "tests/reliability/test_fuzzing.py",
        "tests/reliability/test_slow_client.py",
        "tests/reliability/test_stream_leftovers.py",
    }
)
HEAVY_UNIT = "heavy"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers keep the two cores busy: the twins' NumPy needs no BLAS threads of its
    # own, whose waits for work would only take CPU from the other worker.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return HEAVY_UNIT if module in HEAVY else module


class ModulesAndHeavyOnes(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> ModulesAndHeavyOnes:
    # Units in the collection's order (below), not xdist's order by their number of tests.
    config.option.loadscopereorder = False
    return ModulesAndHeavyOnes(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Once every plugin has marked the tests (`tests.tiers`): the heavy modules first, then
    the others that start servers, then the unit tests."""
    yield

    def weight(item: pytest.Item) -> int:
        if unit_of(item.nodeid) == HEAVY_UNIT:
            return 0
        return 2 if item.get_closest_marker("unit") is not None else 1

    items.sort(key=weight)
