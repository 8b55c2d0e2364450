"""`python -m bench soak` in its smallest form: every ending sent, every figure reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import ENDINGS

pytestmark = pytest.mark.triton


def test_the_soak_sends_every_ending_and_reports_the_gateway_before_and_after(
    tmp_path: Path,
) -> None:
    output = tmp_path / "soak.json"
    arguments = ["soak", "--count", "28", "--idle", "1", "--settle", "1", "--output"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *arguments, str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(output.read_text())
    assert result["outcomes"] == dict.fromkeys(ENDINGS, 4)
    for moment in ("before", "after", "settled"):
        assert set(result[moment]) == {"rss_kib", "tasks", "timers", "fds", "scrape_ms"}
    assert result["settled"]["timers"] <= result["before"]["timers"]
    assert result["idle_cpu_seconds_after"] >= 0
    assert "| settled |" in done.stdout
