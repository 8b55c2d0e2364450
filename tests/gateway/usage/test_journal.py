"""The usage journal: slots in a shared file mapping that outlive the process."""

from __future__ import annotations

import logging
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.usage.journal import (
    HEADER_SIZE,
    MAGIC,
    SLOT_SIZE,
    VERSION,
    Journal,
    JournalRecord,
    orphaned_journals,
    storable_model,
)


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
open_slot = journal.open(
    JournalRecord("o" * 32, "a" * 32, "t" * 32, "m", 7, started_at=3.0, client_request_id="c" * 64)
)
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
    assert (by_id["o"].client_request_id, by_id["d"].client_request_id) == ("c" * 64, None)


def test_a_journal_being_created_is_never_taken_for_an_orphan(tmp_path: Path) -> None:
    (tmp_path / "0123.new").write_bytes(b"\1" * 256)
    with orphaned_journals(tmp_path) as orphans:
        assert orphans == []


def test_a_model_name_is_stored_without_nul_and_clipped_to_its_field() -> None:
    assert storable_model("a\0b") == "a\ufffdb"
    assert storable_model("m" * 101) == "m" * 100
    assert storable_model("é" * 60) == "é" * 50


def test_a_client_request_id_of_64_characters_is_kept_whole_beside_a_full_model_name(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, slots=2)
    full = record(client_request_id="Z9._-" * 12 + "abcd", status="ok", ended_at=2.0)
    full.model = "m" * 100
    slot = journal.open(record())
    assert slot is not None
    journal.close(slot, full)
    journal.shutdown(keep=True)  # its lock is free: the file is an orphan now
    with orphaned_journals(tmp_path) as orphans:
        [(_, [found])] = orphans
    assert found == full
    assert len(found.client_request_id or "") == 64


def test_a_journal_file_names_its_layout_in_a_header(tmp_path: Path) -> None:
    journal = Journal(tmp_path, slots=3)
    data = journal.path.read_bytes()
    journal.shutdown(keep=False)
    assert data[: len(MAGIC)] == MAGIC
    assert struct.unpack_from("<HH", data, len(MAGIC)) == (VERSION, SLOT_SIZE)
    assert len(data) == HEADER_SIZE + 3 * SLOT_SIZE
    # A version-1 gateway reads every `*.usage` file as its own layout: it never sees this one.
    assert journal.path.suffix != ".usage"


VERSION_1_SLOT = struct.Struct("<BB2xII4xddd32s32s32s100s")
"""Version 1: no header, 256-byte slots (state, status, prompt and completion tokens, first
token, start and end times, request, account and token ids, model), in `*.usage` files."""


def version_1_slot(state: int, request_id: str, status: int = 0) -> bytes:
    """A slot of `state` (0 free, 1 open, 2 closed); `status` 3 is `backend_error`."""
    fields = (state, status, 7, 42, 3.25, 3.0, 4.0, request_id.encode())
    slot = VERSION_1_SLOT.pack(*fields, b"a" * 32, b"t" * 32, b"@twin/model")
    return slot.ljust(256, b"\0")


def test_a_journal_of_the_previous_layout_is_recovered_without_client_request_ids(
    tmp_path: Path,
) -> None:
    """A gateway upgraded after a crash still writes what the old process left."""
    free, closed, open_ = (version_1_slot(s, f"{s}" * 32, status=3) for s in (0, 2, 1))
    (tmp_path / "0123abcd.usage").write_bytes(free + closed + open_)
    with orphaned_journals(tmp_path) as orphans:
        [(path, records)] = orphans
    assert path.name == "0123abcd.usage"
    assert records == [
        JournalRecord("2" * 32, "a" * 32, "t" * 32, "@twin/model", 7, 42, "backend_error",
                      3.0, 3.25, 4.0, None),
        JournalRecord("1" * 32, "a" * 32, "t" * 32, "@twin/model", 7, 42, "interrupted",
                      3.0, 3.25, 3.25, None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "header",
    [
        MAGIC + struct.pack("<HH", VERSION + 1, SLOT_SIZE),
        MAGIC + struct.pack("<HH", VERSION, SLOT_SIZE + 64),
        version_1_slot(2, "x" * 32)[:12],
    ],
    ids=["newer-version", "other-slot-size", "no-header"],
)
def test_a_journal_of_an_unknown_layout_is_left_alone_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, header: bytes
) -> None:
    """Never misread: a newer gateway (after a rollback) can still write its records."""
    path = tmp_path / "4567.journal"
    contents = header.ljust(HEADER_SIZE, b"\0") + version_1_slot(2, "x" * 32) * 4
    path.write_bytes(contents)
    with caplog.at_level(logging.ERROR, "gateway.usage"), orphaned_journals(tmp_path) as orphans:
        assert orphans == []
    assert path.read_bytes() == contents
    assert "4567.journal" in caplog.text
    with orphaned_journals(tmp_path) as orphans:  # its lock was let go: nothing holds it
        assert orphans == []
