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

A file begins with a header naming its layout (`MAGIC`, `VERSION`, the slot size); a layout
change bumps `VERSION`. A file this code cannot read is left where it is, for a gateway that
can, never misread. Version 1 files (`*.usage`: no header, 256-byte slots without the client's
request id) are still recovered; their records have no client request id. Files of version 2
on are named `*.journal`, so that a version-1 gateway (which read any `*.usage` file as its
own layout) never misreads one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.usage.client_request_id import MAX_LENGTH as CLIENT_REQUEST_ID_BYTES
from gateway.usage.status import RunStatus

logger = logging.getLogger("gateway.usage")

FREE, OPEN, CLOSED = 0, 1, 2
STATUSES = tuple(RunStatus)

MAGIC = b"gwusage\0"
"""A file's first bytes; never a version-1 file's (it begins with a slot state: 0, 1 or 2)."""
VERSION = 2
_HEADER = struct.Struct("<8sHH")
HEADER_SIZE = 64
_SLOT = struct.Struct(f"<BB2xII4xddd32s32s32s100s{CLIENT_REQUEST_ID_BYTES}s")
SLOT_SIZE = 320
_COMPLETION = struct.Struct("<I")
_COMPLETION_OFFSET = 8
_FIRST_TOKEN = struct.Struct("<d")
_FIRST_TOKEN_OFFSET = 16
SUFFIX = ".journal"

V1_SUFFIX = ".usage"
_V1_SLOT = struct.Struct("<BB2xII4xddd32s32s32s100s")
V1_SLOT_SIZE = 256


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
    client_request_id: str | None = None
    """The client's `X-Request-Id` (see `gateway.usage.client_request_id`), if it sent one."""


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
        size = HEADER_SIZE + slots * SLOT_SIZE
        os.ftruncate(self._fd, size)
        os.pwrite(self._fd, _HEADER.pack(MAGIC, VERSION, SLOT_SIZE), 0)
        self.path = directory / f"{name}{SUFFIX}"
        creating.rename(self.path)  # visible to other processes only once locked and headed
        self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED)
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
        _COMPLETION.pack_into(self._map, _offset(slot) + _COMPLETION_OFFSET, count)

    def set_first_token_at(self, slot: int, moment: float) -> None:
        _FIRST_TOKEN.pack_into(self._map, _offset(slot) + _FIRST_TOKEN_OFFSET, moment)

    def close(self, slot: int, record: JournalRecord) -> None:
        self._write(slot, CLOSED, record)

    def release(self, slot: int) -> None:
        """The database has the record: the slot may be reused."""
        self._map[_offset(slot)] = FREE
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
            _offset(slot),
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
            _clip(record.client_request_id or "", CLIENT_REQUEST_ID_BYTES),
        )


def _offset(slot: int) -> int:
    return HEADER_SIZE + slot * SLOT_SIZE


class UnreadableJournal(Exception):
    """A journal file of a layout this code does not know (a newer gateway's, or damaged)."""


def _records_in(path: Path, data: bytes) -> list[JournalRecord]:
    if path.suffix == V1_SUFFIX:
        return list(_records_of(data, 0, V1_SLOT_SIZE, _V1_SLOT))
    if len(data) < HEADER_SIZE:
        raise UnreadableJournal(f"{len(data)} bytes, shorter than a header")
    magic, version, slot_size = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise UnreadableJournal(f"not a usage journal (begins {magic!r})")
    if (version, slot_size) != (VERSION, SLOT_SIZE):
        raise UnreadableJournal(
            f"layout version {version} with {slot_size}-byte slots; this gateway reads "
            f"version {VERSION} with {SLOT_SIZE}-byte slots (and version 1 `*{V1_SUFFIX}` files)"
        )
    return list(_records_of(data, HEADER_SIZE, SLOT_SIZE, _SLOT))


def _records_of(
    data: bytes, start: int, slot_size: int, layout: struct.Struct
) -> Iterator[JournalRecord]:
    for offset in range(start, len(data) - slot_size + 1, slot_size):
        state = data[offset]
        if state in (OPEN, CLOSED):
            yield _record(state, layout.unpack_from(data, offset))


def _record(state: int, fields: tuple[Any, ...]) -> JournalRecord:
    """A slot's record; a version-1 slot's `fields` end at the model."""
    (_, status, prompt, completion, first, started, ended, rid, account, token, model) = fields[:11]
    client_request_id = _text(fields[11]) if len(fields) > 11 else ""
    return JournalRecord(
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
        client_request_id=client_request_id or None,
    )


@contextlib.contextmanager
def orphaned_journals(directory: Path) -> Iterator[list[tuple[Path, list[JournalRecord]]]]:
    """Files of processes that are gone (their lock is free), with their unwritten records.

    The files stay locked by this process until the block ends; the caller removes each one
    it has written to the database. A file whose layout is unknown is logged and left alone.
    """
    held: list[int] = []
    found: list[tuple[Path, list[JournalRecord]]] = []
    try:
        for path in _journal_files(directory):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                records = _records_in(path, path.read_bytes())
            except UnreadableJournal as error:
                os.close(fd)
                logger.error("usage journal %s left for a gateway that reads it: %s", path, error)
                continue
            held.append(fd)
            found.append((path, records))
        yield found
    finally:
        for fd in held:
            os.close(fd)


def _journal_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted([*directory.glob(f"*{SUFFIX}"), *directory.glob(f"*{V1_SUFFIX}")])
