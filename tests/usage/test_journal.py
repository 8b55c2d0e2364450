"""The usage journal: slots in a shared file mapping that outlive the process."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from gateway.usage.journal import Journal, JournalRecord, orphaned_journals, storable_model


def record(request_id: str = "r" * 32, **fields: object) -> JournalRecord:
    return JournalRecord(request_id, "a" * 32, "t" * 32, "@twin/model", 11, **fields)  # type: ignore[arg-type]


def test_a_full_journal_refuses_to_open_another_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path, slots=2)
    assert journal.open(record("1" * 32)) is not None
    assert journal.open(record("2" * 32)) is not None
    assert journal.open(record("3" * 32)) is None


def test_a_released_slot_is_reused(tmp_path: Path) -> None:
    journal = Journal(tmp_path, slots=1)
    slot = journal.open(record())
    assert slot is not None
    journal.close(slot, record(status="ok"))
    journal.release(slot)
    assert journal.open(record("2" * 32)) == slot


def test_a_live_processes_journal_is_not_an_orphan(tmp_path: Path) -> None:
    journal = Journal(tmp_path, slots=4)
    journal.open(record())
    with orphaned_journals(tmp_path) as orphans:
        assert orphans == []


DIES_MID_REQUEST = """
import sys, time
from pathlib import Path
from gateway.usage.journal import Journal, JournalRecord
journal = Journal(Path(sys.argv[1]), slots=8)
done = journal.open(JournalRecord("d" * 32, "a" * 32, "t" * 32, "m", 5, started_at=1.0))
journal.close(done, JournalRecord("d" * 32, "a" * 32, "t" * 32, "m", 5, 9, "ok", 1.0, 1.5, 2.0))
open_slot = journal.open(JournalRecord("o" * 32, "a" * 32, "t" * 32, "m", 7, started_at=3.0))
journal.set_first_token_at(open_slot, 3.25)
journal.set_completion_tokens(open_slot, 42)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_killed_process_leaves_its_open_and_unwritten_records_to_the_next(
    tmp_path: Path,
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", DIES_MID_REQUEST, str(tmp_path)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"ready"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    with orphaned_journals(tmp_path) as orphans:
        [(_, records)] = orphans
    by_id = {r.request_id[0]: r for r in records}
    assert (by_id["d"].status, by_id["d"].completion_tokens, by_id["d"].ended_at) == ("ok", 9, 2.0)
    assert (by_id["o"].status, by_id["o"].prompt_tokens, by_id["o"].completion_tokens) == (
        "interrupted",
        7,
        42,
    )
    assert by_id["o"].first_token_at == 3.25


def test_a_journal_being_created_is_never_taken_for_an_orphan(tmp_path: Path) -> None:
    (tmp_path / "0123.new").write_bytes(b"\1" * 256)
    with orphaned_journals(tmp_path) as orphans:
        assert orphans == []


def test_a_model_name_is_stored_without_nul_and_clipped_to_its_field() -> None:
    assert storable_model("a\0b") == "a\ufffdb"
    assert storable_model("m" * 101) == "m" * 100
    assert storable_model("é" * 60) == "é" * 50
