"""In-flight batching on one background thread, the way TensorRT-LLM's batch manager works.

Each iteration admits waiting requests (prefill, first token) up to `max_inflight_requests`,
then runs one decode step for every request that was already active, sends each its token,
and retires the finished. A new request therefore starts within one iteration, never waiting
for the others to finish. Responses go through `ResponseChannel`s and counts through
`SchedulerEvents`, so this module knows nothing of Triton and is tested without it.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .config import TwinConfig
from .generation_request import GenerationRequest
from .kv_cache import KVCache
from .network import LlamaNetwork
from .sampling import RequestSampler, choose_tokens

UNLOADING_MESSAGE = "the model is being unloaded; the request was not completed"


class ResponseChannel(Protocol):
    """Where one request's responses go: Triton's response sender, or a test's recorder."""

    def send_tokens(
        self, token_ids: Sequence[int], sequence_length: int, *, final: bool
    ) -> None: ...

    def send_empty_final(self) -> None: ...

    def send_error(self, message: str) -> None: ...

    def is_cancelled(self) -> bool: ...


class Outcome(enum.StrEnum):
    """Why a request ended; the `outcome` label of `cpu_twin_requests_total`."""

    LENGTH = "length"
    END_ID = "end_id"
    STOP_WORDS = "stop_words"
    STOP = "stop"
    CANCELLED = "cancelled"
    ERROR = "error"


class SchedulerEvents(Protocol):
    """What the scheduler reports, for metrics and logs."""

    def tokens_generated(self, count: int) -> None: ...

    def active_requests(self, count: int) -> None: ...

    def request_finished(
        self, request_id: str, outcome: Outcome, generated_tokens: int, error: str | None
    ) -> None: ...


@dataclass(frozen=True)
class SchedulingPolicy:
    max_inflight_requests: int
    decode_tokens_per_second: float = 0.0
    cancellation_check_period_s: float = 0.1

    @classmethod
    def from_config(cls, config: TwinConfig) -> SchedulingPolicy:
        return cls(
            max_inflight_requests=config.max_inflight_requests,
            decode_tokens_per_second=config.decode_tokens_per_second,
            cancellation_check_period_s=config.cancellation_check_period_ms / 1000.0,
        )

    @property
    def min_step_seconds(self) -> float:
        tps = self.decode_tokens_per_second
        return 1.0 / tps if tps > 0 else 0.0


@dataclass(eq=False)
class InFlightRequest:
    """A request between submission and its final response."""

    request: GenerationRequest
    channel: ResponseChannel
    sampler: RequestSampler
    next_cancellation_check: float
    tokens: list[int] = field(default_factory=list)
    """Prompt and generated tokens, for stop words and bad words."""
    generated: list[int] = field(default_factory=list)
    cache: KVCache | None = None
    finished: bool = False

    @property
    def last_token(self) -> int:
        return self.generated[-1]

    def banned_tokens(self) -> list[int]:
        """Bad words whose prefix the sequence ends with; end_id before min_tokens."""
        request = self.request
        banned = [
            word[-1]
            for word in request.bad_words
            if len(word) == 1 or self.tokens[-(len(word) - 1) :] == list(word[:-1])
        ]
        if request.end_id is not None and len(self.generated) < request.min_tokens:
            banned.append(request.end_id)
        return banned

    def finish_reason(self) -> Outcome | None:
        """After a token was appended: has a stop word completed, or the length been reached?"""
        for word in self.request.stop_words:
            if self.tokens[-len(word) :] == list(word):
                return Outcome.STOP_WORDS
        if len(self.generated) >= self.request.output_len:
            return Outcome.LENGTH
        return None

    def output_ids(self) -> list[int]:
        if self.request.include_input:
            return [*self.request.input_ids.tolist(), *self.generated]
        return list(self.generated)


@dataclass
class _Work:
    admitted: list[InFlightRequest]
    stops: set[str]


class Scheduler:
    """Owns the generation thread; `submit`, `stop` and `close` are safe from any thread."""

    def __init__(
        self,
        network: LlamaNetwork,
        policy: SchedulingPolicy,
        events: SchedulerEvents,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._network = network
        self._policy = policy
        self._events = events
        self._clock = clock
        self._condition = threading.Condition()
        self._waiting: deque[InFlightRequest] = deque()
        self._stops: set[str] = set()
        self._closing = threading.Event()
        self._active: list[InFlightRequest] = []
        self._thread = threading.Thread(target=self._run, name="cpu-twin-generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: GenerationRequest, channel: ResponseChannel) -> None:
        entry = InFlightRequest(
            request=request,
            channel=channel,
            sampler=RequestSampler(
                request.sampling, self._network.shape.vocab_size, request.input_ids.tolist()
            ),
            next_cancellation_check=self._clock() + self._policy.cancellation_check_period_s,
            tokens=request.input_ids.tolist(),
        )
        with self._condition:
            if not self._closing.is_set():
                self._waiting.append(entry)
                self._condition.notify()
                return
        self._fail(entry, UNLOADING_MESSAGE)

    def stop(self, request_id: str) -> None:
        """End the in-flight (or waiting) requests with this id with an empty final response."""
        with self._condition:
            self._stops.add(request_id)
            self._condition.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; every open request gets an error response."""
        with self._condition:
            self._closing.set()
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif self._thread.ident is None:
            self._end_all(UNLOADING_MESSAGE)

    # The generation thread.

    def _run(self) -> None:
        while (work := self._next_work()) is not None:
            started = self._clock()
            ran_network = False
            try:
                ran_network = self._iterate(work)
            except Exception as error:  # a bug, not one request's fault: fail all, keep serving
                self._end_all(f"internal error in the CPU twin: {error!r}")
            if ran_network:
                self._pace(started)
        self._end_all(UNLOADING_MESSAGE)

    def _next_work(self) -> _Work | None:
        """Block until there is something to do; None once the scheduler is closing."""
        with self._condition:
            while not (self._closing.is_set() or self._waiting or self._stops or self._active):
                self._condition.wait()
            if self._closing.is_set():
                return None
            room = self._policy.max_inflight_requests - len(self._active)
            admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
            stops, self._stops = self._stops, set()
        return _Work(admitted, stops)

    def _iterate(self, work: _Work) -> bool:
        """One iteration; True when it ran the network (and so is paced)."""
        if work.stops:
            self._apply_stops(work.stops, work.admitted)
        self._drop_cancelled()
        decoding = [entry for entry in self._active if not entry.finished]
        for entry in work.admitted:
            self._guarded(entry, functools.partial(self._admit, entry))
        if decoding:
            self._decode(decoding)
        self._active = [entry for entry in self._active if not entry.finished]
        self._events.active_requests(len(self._active))
        return bool(work.admitted or decoding)

    def _admit(self, entry: InFlightRequest) -> None:
        """Prefill the prompt and send the first token."""
        if entry.finished:
            return
        if entry.channel.is_cancelled():
            self._close_cancelled(entry)
            return
        entry.cache = self._network.new_cache()
        logits = self._network.prefill(entry.request.input_ids, entry.cache)
        token = choose_tokens(logits[None, :], [entry.sampler], [entry.banned_tokens()])
        self._active.append(entry)
        self._events.tokens_generated(1)
        self._advance(entry, int(token[0]))

    def _decode(self, batch: list[InFlightRequest]) -> None:
        """One token for every request of `batch`; a failing request fails alone."""
        caches = [entry.cache for entry in batch if entry.cache is not None]
        try:
            if len(caches) != len(batch):
                raise RuntimeError("an active request has no KV cache")
            last_tokens = np.array([entry.last_token for entry in batch], dtype=np.int64)
            logits = self._network.decode(last_tokens, caches)
        except Exception as error:
            if len(batch) == 1:
                self._fail(batch[0], f"generation failed: {error!r}")
            else:  # caches are unchanged by a failed step: find the culprit one by one
                for entry in batch:
                    self._decode([entry])
            return
        chosen = self._choose(batch, logits)
        self._events.tokens_generated(len(chosen))
        for entry, token in chosen:
            self._guarded(entry, functools.partial(self._advance, entry, token))

    def _choose(
        self, batch: list[InFlightRequest], logits: npt.NDArray[np.float32]
    ) -> list[tuple[InFlightRequest, int]]:
        try:
            tokens = choose_tokens(
                logits,
                [entry.sampler for entry in batch],
                [entry.banned_tokens() for entry in batch],
            )
        except Exception as error:
            if len(batch) == 1:
                self._fail(batch[0], f"sampling failed: {error!r}")
                return []
            return [
                pair
                for row, entry in enumerate(batch)
                for pair in self._choose([entry], logits[row : row + 1])
            ]
        return list(zip(batch, tokens.tolist(), strict=True))

    def _advance(self, entry: InFlightRequest, token: int) -> None:
        """Record a sampled token, send what the request's mode sends, finish if done."""
        request = entry.request
        entry.sampler.observe(token)
        if request.end_id is not None and token == request.end_id:
            if request.streaming:
                entry.channel.send_empty_final()
            else:
                self._send_whole_output(entry)
            self._finish(entry, Outcome.END_ID)
            return
        entry.generated.append(token)
        entry.tokens.append(token)
        outcome = entry.finish_reason()
        if request.streaming:
            entry.channel.send_tokens([token], len(entry.generated), final=outcome is not None)
        elif outcome is not None:
            self._send_whole_output(entry)
        if outcome is not None:
            self._finish(entry, outcome)

    @staticmethod
    def _send_whole_output(entry: InFlightRequest) -> None:
        output_ids = entry.output_ids()
        entry.channel.send_tokens(output_ids, len(output_ids), final=True)

    def _apply_stops(self, request_ids: set[str], admitted: Iterable[InFlightRequest]) -> None:
        with self._condition:
            stopped_waiting = [e for e in self._waiting if e.request.request_id in request_ids]
            for entry in stopped_waiting:
                self._waiting.remove(entry)
        candidates = [*self._active, *admitted, *stopped_waiting]
        for entry in candidates:
            if entry.request.request_id in request_ids and not entry.finished:
                self._guarded(entry, functools.partial(self._stop, entry))

    def _stop(self, entry: InFlightRequest) -> None:
        entry.channel.send_empty_final()
        self._finish(entry, Outcome.STOP)

    def _drop_cancelled(self) -> None:
        """Poll each request's cancellation every `cancellation_check_period_s`."""
        now = self._clock()
        for entry in self._active:
            if entry.finished or now < entry.next_cancellation_check:
                continue
            entry.next_cancellation_check = now + self._policy.cancellation_check_period_s
            self._guarded(entry, functools.partial(self._drop_if_cancelled, entry))

    def _drop_if_cancelled(self, entry: InFlightRequest) -> None:
        if entry.channel.is_cancelled():
            self._close_cancelled(entry)

    def _close_cancelled(self, entry: InFlightRequest) -> None:
        """Nobody reads the answer, but Triton counts the request in flight until a final
        response: without one, shutdown waits for it until its exit timeout."""
        with contextlib.suppress(Exception):
            entry.channel.send_error("request cancelled by the client")
        self._finish(entry, Outcome.CANCELLED)

    def _guarded(self, entry: InFlightRequest, action: Callable[[], None]) -> None:
        """Run one request's step; an exception ends that request only, with an error."""
        try:
            action()
        except Exception as error:
            self._fail(entry, f"generation failed: {error!r}")

    def _fail(self, entry: InFlightRequest, message: str) -> None:
        if entry.finished:
            return
        with contextlib.suppress(Exception):  # the client may be gone; nothing more to do
            entry.channel.send_error(message)
        self._finish(entry, Outcome.ERROR, message)

    def _finish(self, entry: InFlightRequest, outcome: Outcome, error: str | None = None) -> None:
        """Retire a request: free its cache; the active list drops it at the iteration's end."""
        if entry.finished:
            return
        entry.finished = True
        entry.cache = None
        with contextlib.suppress(Exception):
            self._events.request_finished(
                entry.request.request_id, outcome, len(entry.generated), error
            )

    def _end_all(self, message: str) -> None:
        with self._condition:
            waiting = list(self._waiting)
            self._waiting.clear()
        for entry in [*self._active, *waiting]:
            self._fail(entry, message)
        self._active = []
        with contextlib.suppress(Exception):
            self._events.active_requests(0)

    def _pace(self, started: float) -> None:
        """Make the iteration last at least 1/decode_tokens_per_second, like a GPU step."""
        remaining = self._policy.min_step_seconds - (self._clock() - started)
        if remaining > 0:
            self._closing.wait(remaining)
