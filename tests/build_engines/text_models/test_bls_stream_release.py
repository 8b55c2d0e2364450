"""When the BLS model lets go of a finished stream's responses: never on the stub's thread.

Triton 24.10's stub keeps each BLS response iterator in a map of its own too and erases it
from its stub-to-parent thread, which serves one queue in order (cleanups, `is_cancelled`
questions) and runs without the GIL. `StubToParent` below plays that thread: whichever side
drops the last reference frees the stream's responses, and on that thread that frees Python
objects without the GIL: the stub's `double free or corruption` under concurrent streams.
"""

from __future__ import annotations

import itertools
import queue
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from build_engines.text_models.tokenizer import TextTokenizer
from tests.build_engines.text_models.conftest import MakeModel
from tests.build_engines.text_models.doubles import FakeGenerationModel, text_request
from tests.python_backend_doubles import FakeRequest, FakeTritonError

STUB_THREAD = "stub-to-parent"


class StubToParent:
    """The stub's map of BLS iterators and its stub-to-parent thread.

    Busy, as under load: queued cleanups wait until a round trip (`is_cancelled`) or `flush`
    makes the thread serve the queue, in order.
    """

    def __init__(self) -> None:
        self.iterators: dict[int, Any] = {}
        self.freed_on: list[str] = []
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._served = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name=STUB_THREAD, daemon=True)
        self._thread.start()

    def register(self, key: int, iterator: Any) -> None:
        self.iterators[key] = iterator
        weakref.finalize(iterator, lambda: self.freed_on.append(threading.current_thread().name))

    def enqueue_cleanup(self, key: int) -> None:
        self._queue.put(("cleanup", key))

    def round_trip(self) -> None:
        """What `is_cancelled` does: a message behind everything queued, answered in turn."""
        done = threading.Event()
        self._queue.put(("go", done))
        done.wait(5)

    def flush(self) -> None:
        self.round_trip()

    def stop(self) -> None:
        self._queue.put(("stop", None))
        self._thread.join(5)

    def _serve(self) -> None:
        held: list[tuple[str, Any]] = []
        while True:
            held.append(self._queue.get())
            if held[-1][0] == "stop":
                return
            if held[-1][0] != "go":
                continue  # busy: serve nothing until a round trip waits
            for kind, payload in held:
                if kind == "cleanup":
                    del self.iterators[payload]
                else:
                    payload.set()
            held = []


class StubIterator:
    """24.10's BLS response iterator: its end queues the stub's cleanup of its map entry."""

    def __init__(self, stub: StubToParent, key: int, responses: Iterator[Any]) -> None:
        self._stub = stub
        self._key = key
        self._responses = responses
        self._finished = False

    def __iter__(self) -> StubIterator:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        try:
            return next(self._responses)
        except StopIteration:
            self._finished = True
            self._stub.enqueue_cleanup(self._key)
            raise


class StubRequest(FakeRequest):
    """A text request whose `is_cancelled` goes through the stub-to-parent queue. Asked after
    the final response it counts in `asked_after_final`: Triton has freed the response
    factory the question refers to by then."""

    def __init__(self, stub: StubToParent, **inputs: Any) -> None:
        request = text_request(**{"text_input": "Say hello", "max_tokens": 20, **inputs})
        super().__init__({name: tensor.as_numpy() for name, tensor in request.inputs.items()})
        self._stub = stub
        self.asked_after_final = 0

    def is_cancelled(self) -> bool:
        if self.sender.done.is_set():
            self.asked_after_final += 1
        self._stub.round_trip()
        return super().is_cancelled()


@pytest.fixture
def stub(pb_utils: types.ModuleType, generation: FakeGenerationModel) -> Iterator[StubToParent]:
    """Route the fake BLS `exec` through the stub's map."""
    stub = StubToParent()
    keys = itertools.count()
    exec_stream = pb_utils.InferenceRequest.exec

    def exec_through_stub(self: Any, decoupled: bool = False) -> StubIterator:
        key = next(keys)
        iterator = StubIterator(stub, key, iter(exec_stream(self, decoupled)))
        stub.register(key, iterator)
        return iterator

    pb_utils.InferenceRequest.exec = exec_through_stub
    yield stub
    stub.stop()


@pytest.fixture
def bls(make_model: MakeModel, stub: StubToParent) -> Any:
    return make_model("bls", cancellation_check_period_ms=0)


@pytest.fixture
def replying(generation: FakeGenerationModel, tokenizer: TextTokenizer) -> FakeGenerationModel:
    generation.reply_ids = tokenizer.encode_word("a short reply")
    return generation


def serve(bls: Any, request: StubRequest) -> StubRequest:
    bls.execute([request])
    request.sender.wait()
    return request


def wait_until_streams_end(bls: Any) -> None:
    """The worker threads carry on a little after the final response: wait for them."""
    bls._workers.shutdown(wait=True)


def test_a_finished_streams_responses_are_freed_on_the_models_thread(
    bls: Any, stub: StubToParent, replying: FakeGenerationModel
) -> None:
    serve(bls, StubRequest(stub, stream=True))
    wait_until_streams_end(bls)
    stub.flush()
    assert len(stub.freed_on) == 1
    assert STUB_THREAD not in stub.freed_on


def test_a_stopped_streams_responses_are_freed_on_the_models_thread(
    bls: Any, stub: StubToParent, replying: FakeGenerationModel
) -> None:
    cancelled = StubRequest(stub, stream=True)
    cancelled.cancel_after_responses = 1
    assert serve(bls, cancelled).sender.errors[0].code() == FakeTritonError.CANCELLED
    serve(bls, StubRequest(stub, stream=True))
    wait_until_streams_end(bls)
    stub.flush()
    assert len(stub.freed_on) == 3  # the stream, its stop request, the next stream
    assert STUB_THREAD not in stub.freed_on


@pytest.mark.parametrize("stream", [True, False])
def test_cancellation_is_not_asked_after_the_final_response(
    bls: Any, stub: StubToParent, replying: FakeGenerationModel, stream: bool
) -> None:
    request = serve(bls, StubRequest(stub, stream=stream))
    wait_until_streams_end(bls)
    assert request.asked_after_final == 0
