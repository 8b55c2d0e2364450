"""A crash-safe table of usage records that the database does not have yet.

Each gateway process owns one file of fixed-size slots, mapped into memory with `MAP_SHARED`.
A record is opened in a slot when a request is admitted, its token count is a store into the
mapping (no system call, no database), and it is closed when the request ends; the slot is
freed only once a committed batch holds the record. The kernel keeps a shared file mapping's
pages when the process dies, so after a crash (even SIGKILL) the next process finds every open
and unwritten record in the file and writes it: nothing is lost between batches. A machine
that loses power can lose what the kernel had not yet written back.

The number of slots is the bound on records waiting for the database: when none is free the
gateway refuses new work rather than serve it unbilled.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.usage.status import RunStatus

FREE, OPEN, CLOSED = 0, 1, 2
STATUSES = tuple(RunStatus)

_SLOT = struct.Struct("<BB2xII4xddd32s32s32s100s")
SLOT_SIZE = 256
_COMPLETION = struct.Struct("<I")
_COMPLETION_OFFSET = 8
_FIRST_TOKEN = struct.Struct("<d")
_FIRST_TOKEN_OFFSET = 16
SUFFIX = ".usage"


@dataclass
class JournalRecord:
    """What a slot holds. Times are seconds since the epoch; `first_token_at` 0 = none."""

    request_id: str
    account_id: str
    token_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int = 0
    status: RunStatus = RunStatus.OK
    started_at: float = 0.0
    first_token_at: float = 0.0
    ended_at: float = 0.0


MODEL_BYTES = 100
"""A slot's model field, and no more than `usage_records.model` (100 characters) holds."""


def storable_model(name: str) -> str:
    """The model name in a form both the slot and every database can hold.

    Records name a catalog model or `unknown` (a refused request's own text is never kept); in
    case another name reaches it, NUL (PostgreSQL's text cannot hold it) becomes U+FFFD and the
    name is clipped to its field.
    """
    return _clip(name.replace("\0", "\ufffd"), MODEL_BYTES).decode()


def _text(value: bytes) -> str:
    return value.rstrip(b"\0").decode("utf-8", "replace")


def _clip(value: str, size: int) -> bytes:
    return value.encode()[:size].decode("utf-8", "ignore").encode()


class Journal:
    """This process's slot file, locked so that another process knows it is alive."""

    def __init__(self, directory: Path, slots: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        creating = directory / f"{name}.new"
        self._fd = os.open(creating, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(self._fd, slots * SLOT_SIZE)
        self.path = directory / f"{name}{SUFFIX}"
        creating.rename(self.path)  # visible to other processes only once locked
        self._map = mmap.mmap(self._fd, slots * SLOT_SIZE, mmap.MAP_SHARED)
        self._free = list(range(slots - 1, -1, -1))
        self.capacity = slots

    @property
    def in_use(self) -> int:
        return self.capacity - len(self._free)

    def open(self, record: JournalRecord) -> int | None:
        """The slot now holding `record`, or None when every slot is taken."""
        if not self._free:
            return None
        slot = self._free.pop()
        self._write(slot, OPEN, record)
        return slot

    def set_completion_tokens(self, slot: int, count: int) -> None:
        _COMPLETION.pack_into(self._map, slot * SLOT_SIZE + _COMPLETION_OFFSET, count)

    def set_first_token_at(self, slot: int, moment: float) -> None:
        _FIRST_TOKEN.pack_into(self._map, slot * SLOT_SIZE + _FIRST_TOKEN_OFFSET, moment)

    def close(self, slot: int, record: JournalRecord) -> None:
        self._write(slot, CLOSED, record)

    def release(self, slot: int) -> None:
        """The database has the record: the slot may be reused."""
        self._map[slot * SLOT_SIZE] = FREE
        self._free.append(slot)

    def shutdown(self, *, keep: bool) -> None:
        """Unmap; the file is removed only when no record in it is still unwritten."""
        self._map.flush()
        self._map.close()
        if not keep:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)

    def _write(self, slot: int, state: int, record: JournalRecord) -> None:
        _SLOT.pack_into(
            self._map,
            slot * SLOT_SIZE,
            state,
            STATUSES.index(record.status),
            record.prompt_tokens,
            record.completion_tokens,
            record.first_token_at,
            record.started_at,
            record.ended_at,
            record.request_id.encode()[:32],
            record.account_id.encode()[:32],
            record.token_id.encode()[:32],
            _clip(record.model, MODEL_BYTES),
        )


def _records_in(data: bytes) -> Iterator[JournalRecord]:
    for offset in range(0, len(data) - SLOT_SIZE + 1, SLOT_SIZE):
        state = data[offset]
        if state not in (OPEN, CLOSED):
            continue
        (_, status, prompt, completion, first, started, ended, rid, account, token, model) = (
            _SLOT.unpack_from(data, offset)
        )
        yield JournalRecord(
            request_id=_text(rid),
            account_id=_text(account),
            token_id=_text(token),
            model=_text(model),
            prompt_tokens=prompt,
            completion_tokens=completion,
            status=STATUSES[status] if state == CLOSED else RunStatus.INTERRUPTED,
            started_at=started,
            first_token_at=first,
            ended_at=ended if state == CLOSED else max(started, first),
        )


@contextlib.contextmanager
def orphaned_journals(directory: Path) -> Iterator[list[tuple[Path, list[JournalRecord]]]]:
    """Files of processes that are gone (their lock is free), with their unwritten records.

    The files stay locked by this process until the block ends; the caller removes each one
    it has written to the database.
    """
    held: list[int] = []
    found: list[tuple[Path, list[JournalRecord]]] = []
    try:
        for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append(fd)
            found.append((path, list(_records_in(path.read_bytes()))))
        yield found
    finally:
        for fd in held:
            os.close(fd)
