"""The meter: opens a record per request, and writes finished records to the database in batches.

The streaming path touches only memory (the journal's slot and a list); one background task
writes batches, each in one transaction. A database outage leaves records waiting in their
slots and the writer retrying; a full journal makes new requests fail with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError, is_refused_data
from gateway.metrics.registry import GatewayMetrics
from gateway.usage.client_request_id import storable as storable_client_request_id
from gateway.usage.journal import Journal, JournalRecord, orphaned_journals, storable_model
from gateway.usage.models import UsageRecord
from gateway.usage.status import RunStatus

logger = logging.getLogger("gateway.usage")


def backlog_full() -> ApiError:
    return ApiError(
        503,
        ErrorCode.USAGE_BACKLOG_FULL,
        "Usage cannot be recorded right now (the usage database is behind); retry shortly",
        {"Retry-After": "5"},
    )


class MeteredRequest:
    """One request's open record: token counts go to the journal slot, not the database."""

    __slots__ = ("_clock", "_meter", "_slot", "record")

    def __init__(self, meter: Meter | None, slot: int, record: JournalRecord, clock: Clock) -> None:
        self._meter = meter
        self._slot = slot
        self.record = record
        self._clock = clock

    def first_token(self) -> None:
        if self.record.first_token_at == 0.0:
            self.record.first_token_at = self._clock.now()
            if self._meter is not None:
                self._meter.journal.set_first_token_at(self._slot, self.record.first_token_at)

    def tokens_sent(self, count: int) -> None:
        self.record.completion_tokens = count
        if self._meter is not None:
            self._meter.journal.set_completion_tokens(self._slot, count)

    def finish(self, status: RunStatus) -> None:
        if self._meter is None or self.record.ended_at:
            return
        self.record.status = status
        self.record.ended_at = self._clock.now()
        self._meter.close(self._slot, self.record)


class UsageMeter:
    """The meter's interface. By itself it keeps nothing: metering off
    (`GATEWAY_USAGE_ENABLED=false`, only to measure metering's own cost)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        """What a record's start, first token and end are read from."""

    @property
    def pending(self) -> int:
        return 0

    def open(
        self,
        request_id: str,
        account_id: str,
        token_id: str,
        model: str,
        prompt_tokens: int,
        *,
        client_request_id: str | None = None,
    ) -> MeteredRequest:
        return MeteredRequest(
            None,
            0,
            JournalRecord(
                request_id,
                account_id,
                token_id,
                model,
                prompt_tokens,
                client_request_id=client_request_id,
            ),
            self.clock,
        )

    def record_refusal(
        self,
        request_id: str,
        account_id: str,
        token_id: str,
        model: str,
        status: RunStatus,
        *,
        client_request_id: str | None = None,
    ) -> None:
        pass


def _row(record: JournalRecord) -> dict[str, Any]:
    ttft = record.first_token_at - record.started_at if record.first_token_at else None
    return {
        "id": record.request_id,
        "account_id": record.account_id,
        "token_id": record.token_id,
        "model": record.model,
        "status": record.status,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "time_to_first_token_ms": None if ttft is None else ttft * 1000,
        "duration_ms": max(0.0, record.ended_at - record.started_at) * 1000,
        "started_at": datetime.fromtimestamp(record.started_at, UTC),
        "client_request_id": record.client_request_id,
    }


class Meter(UsageMeter):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        journal_dir: Path,
        max_pending: int,
        flush_interval: float,
        batch_size: int,
        metrics: GatewayMetrics,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(clock)
        self._sessions = sessions
        self._journal_dir = journal_dir
        self.journal = Journal(journal_dir, max_pending)
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._metrics = metrics
        self._closed: list[tuple[int, JournalRecord]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def open(
        self,
        request_id: str,
        account_id: str,
        token_id: str,
        model: str,
        prompt_tokens: int,
        *,
        client_request_id: str | None = None,
    ) -> MeteredRequest:
        """Open the request's record, or refuse the request when no record can be kept.
        `client_request_id` is the client's `X-Request-Id`; one that is not a valid id (see
        `gateway.usage.client_request_id`) is not kept."""
        record = JournalRecord(
            request_id,
            account_id,
            token_id,
            storable_model(model),
            prompt_tokens,
            started_at=self.clock.now(),
            client_request_id=storable_client_request_id(client_request_id),
        )
        slot = self.journal.open(record)
        if slot is None:
            raise backlog_full()
        return MeteredRequest(self, slot, record, self.clock)

    def record_refusal(
        self,
        request_id: str,
        account_id: str,
        token_id: str,
        model: str,
        status: RunStatus,
        *,
        client_request_id: str | None = None,
    ) -> None:
        """A request refused before the backend: a record with no tokens, if one fits."""
        with contextlib.suppress(ApiError):
            self.open(
                request_id, account_id, token_id, model, 0, client_request_id=client_request_id
            ).finish(status)

    def close(self, slot: int, record: JournalRecord) -> None:
        self.journal.close(slot, record)
        self._closed.append((slot, record))
        self._metrics.usage_queue_depth.set(len(self._closed))
        if len(self._closed) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._closed)

    async def start(self) -> None:
        await self.reconcile()
        self._writer = asyncio.create_task(self._write_forever())

    async def stop(self, deadline_seconds: float = 10.0) -> None:
        """Write what is left; what cannot be written stays in the journal for the next start."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        give_up_at = time.monotonic() + deadline_seconds
        while self._closed and time.monotonic() < give_up_at:
            if not await self.flush():
                await asyncio.sleep(0.2)
        self.journal.shutdown(keep=self.journal.in_use > 0)
        if self._closed:
            logger.error(
                "%d usage records not written; they are in %s for the next start",
                len(self._closed),
                self.journal.path,
            )

    async def flush(self) -> bool:
        """Write one batch; False when the database refused it (the records are kept)."""
        batch = self._closed[: self._batch_size]
        if not batch:
            return True
        started = time.perf_counter()
        try:
            await self._insert([record for _, record in batch])
        except Exception as error:
            self._metrics.usage_flush_failures.inc()
            if not (is_refused_data(error) and await self._insert_one_by_one(batch, error)):
                logger.warning("usage batch of %d not written (will retry): %s", len(batch), error)
                return False
        else:
            self._metrics.usage_flush_duration.observe(time.perf_counter() - started)
        del self._closed[: len(batch)]
        for slot, _ in batch:
            self.journal.release(slot)
        self._metrics.usage_queue_depth.set(len(self._closed))
        return True

    async def _insert_one_by_one(
        self, batch: Sequence[tuple[int, JournalRecord]], error: Exception
    ) -> bool:
        """A batch the database refused although it is up: a record in it cannot be stored.

        Retrying the batch would stop all metering behind it, so each record is written alone
        and one that the database still refuses is logged in full (for billing to replay) and
        dropped. False on any other failure: the batch is retried (written records are skipped).
        """
        logger.error("usage batch of %d refused, writing one by one: %s", len(batch), error)
        for _, record in batch:
            try:
                await self._insert([record])
            except Exception as refused:
                if not is_refused_data(refused):
                    return False
                self._metrics.usage_records_dropped.inc()
                logger.error(
                    "usage record dropped, the database refuses it: %r: %s", record, refused
                )
        return True

    async def reconcile(self) -> int:
        """Write the records of gateway processes that died, then remove their journals."""
        written = 0
        try:
            with orphaned_journals(self._journal_dir) as orphans:
                for path, records in orphans:
                    if records:
                        await self._insert(records)
                        written += len(records)
                    path.unlink(missing_ok=True)
        except Exception as error:
            logger.warning("orphaned usage journals not written yet (will retry): %s", error)
        if written:
            logger.info("recovered %d usage records from a previous process", written)
        return written

    async def _write_forever(self) -> None:
        backoff = self._flush_interval
        next_reconcile = time.monotonic() + 30
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()
            self._wake.clear()
            healthy = True
            while self._closed and healthy:
                healthy = await self.flush()
                if len(self._closed) < self._batch_size:
                    break
            backoff = self._flush_interval if healthy else min(backoff * 2, 5.0)
            if time.monotonic() > next_reconcile:
                next_reconcile = time.monotonic() + 30
                await self.reconcile()

    async def _insert(self, records: Sequence[JournalRecord]) -> None:
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            statement: Any
            if dialect == "postgresql":
                statement = postgresql.insert(UsageRecord).on_conflict_do_nothing()
            elif dialect == "sqlite":
                statement = sqlite.insert(UsageRecord).on_conflict_do_nothing()
            else:
                statement = insert(UsageRecord)
            await session.execute(statement, [_row(record) for record in records])
            await session.commit()
