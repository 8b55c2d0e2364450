"""`pytest -m "not triton"` runs without a tritonserver."""

from __future__ import annotations

import pytest


def test_every_collected_test_that_needs_triton_is_marked_triton(
    request: pytest.FixtureRequest,
) -> None:
    unmarked = [
        item.nodeid
        for item in request.session.items
        if "triton" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("triton") is None
    ]
    assert unmarked == []
