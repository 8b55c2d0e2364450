"""One admitted run, read whole (`complete`) or as events (`events`).

The run reads the backend, turns token ids into text, ends the text at a stop string, and
keeps the usage record, the limits and the metrics in step with what the client was sent.
Each API's encoder turns the result or the events into its own wire format.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

import anyio

from gateway.errors import ApiError
from gateway.inference.decoding import Decoding
from gateway.inference.errors import backend_api_error
from gateway.inference.events import Completion, RunEnd, RunEvent, RunFailed, TextDelta, Usage
from gateway.inference.run_request import RunRequest
from gateway.inference.service import Generation
from gateway.inference.streaming import Heartbeat, with_heartbeats
from gateway.inference.tracking import RunTracker
from gateway.triton.errors import BackendError, BackendUnavailable
from gateway.usage.status import RunStatus


class ClientGone(Exception):
    """The client disconnected before its answer was ready; nobody is left to answer."""


class Run:
    """One admitted run: read it whole (`complete`) or as events (`events`), once."""

    def __init__(
        self,
        generation: Generation,
        request: RunRequest,
        tracker: RunTracker,
        headers: dict[str, str],
    ) -> None:
        self._generation = generation
        self._tracker = tracker
        self._stop = request.stop
        self.stream = request.stream
        self.headers = headers
        """The request ids and the rate-limit headers: every response of the run carries them."""
        self.request_id = generation.request_id
        self.model = generation.entry.name
        self.created = int(time.time())
        self.prompt_tokens = len(generation.input_ids)

    def _usage(self, completion_tokens: int) -> Usage:
        return Usage(self.prompt_tokens, completion_tokens, self.prompt_tokens + completion_tokens)

    def _decoding(self) -> Decoding:
        generation = self._generation
        return Decoding(generation.tokenizer, self._stop, generation.max_tokens)

    def _backend_failed(self, error: BackendError | BackendUnavailable) -> ApiError:
        kind = "unavailable" if isinstance(error, BackendUnavailable) else "error"
        self._tracker.metrics.backend_errors.labels(self.model, kind).inc()
        return backend_api_error(error)

    async def _settle(self, status: RunStatus, close: Callable[[], Awaitable[None]]) -> None:
        """However the run ended: its backend call closed, then its record, limits and
        metrics settled, shielded from the cancellation that may have ended it."""
        with anyio.CancelScope(shield=True):
            await close()
            await self._tracker.finish(status)

    async def complete(self, client_gone: Callable[[], Awaitable[None]]) -> Completion:
        """The whole answer; a client that leaves first cancels the generation.

        Its tokens were never sent, so such a run is billed no completion tokens.
        """
        decoding = self._decoding()
        texts: list[str] = []
        tokens = self._generation.token_ids()
        status = RunStatus.CLIENT_CANCELLED

        async def collect() -> None:
            async for token_id in tokens:
                texts.extend(piece.text for piece in decoding.take((token_id,)))
                if decoding.stopped:
                    return

        async def close() -> None:
            tokens.cancel()

        collecting = asyncio.ensure_future(collect())
        watching = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait((collecting, watching), return_when=asyncio.FIRST_COMPLETED)
            if collecting.done():
                collecting.result()
                status = RunStatus.OK
                self._tracker.sent(decoding.received)
        except (BackendError, BackendUnavailable) as error:
            status = RunStatus.BACKEND_ERROR
            raise self._backend_failed(error) from error
        finally:
            watching.cancel()
            collecting.cancel()
            await self._settle(status, close)
        if status is not RunStatus.OK:
            raise ClientGone
        texts.extend(piece.text for piece in decoding.finish())
        return Completion("".join(texts), self._usage(decoding.received), decoding.finish_reason)

    async def events(self, keepalive_seconds: float) -> AsyncGenerator[RunEvent, None]:
        """The run as events; a backend failure before the first event raises, after it is
        `RunFailed`. A heartbeat marks `keepalive_seconds` of the model's silence.

        Tokens count as sent when the consumer asks for the next event, i.e. once the event
        carrying them was handed to the connection; an event the connection never took is not
        billed. A matched stop string stops the backend at once, not when the end is taken.
        """
        decoding = self._decoding()
        tracker = self._tracker
        started = False
        status = RunStatus.CLIENT_CANCELLED
        items = with_heartbeats(self._generation.token_ids(), keepalive_seconds)
        try:
            async for batch in items:
                if isinstance(batch, Heartbeat):
                    started = True
                    yield batch
                    continue
                pieces = decoding.take(batch)
                if pieces:
                    started = True
                    yield TextDelta(pieces)
                    tracker.sent(pieces[-1].tokens)
                if decoding.stopped:
                    await items.aclose()
                    break
            last = decoding.finish()
            await tracker.release_limits(decoding.received)
            yield RunEnd(last, self._usage(decoding.received), decoding.finish_reason)
            tracker.sent(decoding.received)
            status = RunStatus.OK
        except (BackendError, BackendUnavailable) as error:
            status = RunStatus.BACKEND_ERROR
            api_error = self._backend_failed(error)
            if not started:
                raise api_error from error
            yield RunFailed(api_error)
        finally:
            await self._settle(status, items.aclose)
