"""Triton's `bls` model: text in, text out, streamed through the generation model.

Decoupled. `execute` hands each request to a worker thread and returns, so many streams
progress together although the Python backend calls `execute` serially. (Release 24.10's
backend also runs `async def execute` for decoupled models, but its BLS response iterator
blocks on `next`, so a coroutine would need a thread per stream all the same.)

Cancellation: 24.10's BLS response iterator has no `cancel()`, so a cancelled client's
generation is ended the way TensorRT-LLM's backend offers to every client: a second request
with the same request id and `stop` true, which the CPU twin honours as well.

Releasing a stream: see `FinishedStreams`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from .detokenize import IncrementalDetokenizer
from .limits import Limits
from .settings import ModelArgs
from .tensors import beam_tokens, text_tensor
from .text_request import plan_generation
from .text_stream import CancellationCheck, GenerationResponse, relay
from .tokenizer import TextTokenizer

GENERATION_OUTPUTS = ["output_ids", "sequence_length"]
STOP_REQUEST_INPUTS = ("input_ids", "input_lengths", "request_output_len")
"""The generation model's required inputs, which a stop request must carry too."""
CancellationQuery = Callable[[], bool]


class TritonGeneration:
    """One streaming request to the generation model, made through BLS."""

    def __init__(
        self,
        model_name: str,
        inputs: dict[str, npt.NDArray[Any]],
        request_id: str,
        iterators: list[Any],
    ) -> None:
        """`iterators` gets every BLS response iterator opened, for `FinishedStreams`."""
        self._model_name = model_name
        self._inputs = inputs
        self._request_id = request_id
        self._pending: Iterator[Any] = iter(())
        self._iterators = iterators

    def responses(self) -> Iterator[GenerationResponse]:
        self._pending = self._exec(self._inputs)
        for response in self._pending:
            yield _generation_response(response)

    def stop(self) -> None:
        stop_inputs = {name: self._inputs[name] for name in STOP_REQUEST_INPUTS}
        for _ in self._exec({**stop_inputs, "stop": np.array([[True]])}):
            pass
        for _ in self._pending:  # the stopped request's last responses
            pass

    def _exec(self, inputs: dict[str, npt.NDArray[Any]]) -> Iterator[Any]:
        request = pb_utils.InferenceRequest(
            model_name=self._model_name,
            inputs=[pb_utils.Tensor(name, array) for name, array in inputs.items()],
            requested_output_names=GENERATION_OUTPUTS,
            request_id=self._request_id,
        )
        responses: Iterator[Any] = iter(request.exec(decoupled=True))
        self._iterators.append(responses)
        return responses


class FinishedStreams:
    """Holds finished BLS response iterators until the stub has let go of them.

    Release 24.10's stub keeps each BLS stream's response iterator in a map of its own, and
    erases it on its stub-to-parent thread, which runs without the GIL. Whoever drops the last
    reference destroys the stream's responses and the numpy arrays the stub made for their
    tensors: on that thread those Python objects are freed without the GIL, which corrupts the
    heap now and then under concurrent streams ("double free or corruption (fasttop)") and kills
    the stub (python_backend #390, fixed in 24.12, frees them under the GIL).

    That thread serves its queue in order, and `is_cancelled()` goes through the same queue:
    once an `is_cancelled()` asked after an iterator finished has been answered with False, the
    stub has erased that iterator, so releasing ours here, under the GIL, destroys it. A True
    answer may be cached without a round trip, so those iterators wait for the next answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: deque[tuple[int, Sequence[Any]]] = deque()
        self._tickets = itertools.count()

    def hold(self, iterators: Sequence[Any]) -> int:
        """Keep `iterators` (all finished); the ticket to pass to `release_through`."""
        with self._lock:
            ticket = next(self._tickets)
            self._held.append((ticket, iterators))
        return ticket

    def release_through(self, ticket: int) -> None:
        """Drop every iterator held up to `ticket`, whose cleanup the stub has done."""
        released = []
        with self._lock:
            while self._held and self._held[0][0] <= ticket:
                released.append(self._held.popleft())
        released.clear()  # the iterators die here, under the GIL

    def retire(self, iterators: Sequence[Any], is_cancelled: CancellationQuery) -> None:
        """Read `iterators` to their end and hold them, then release what the stub's answer
        proves it has let go of. Call before the client's final response: after it, Triton has
        freed what `is_cancelled` asks about. Never raises: the final response must go out."""
        if not iterators:
            return
        for iterator in iterators:
            with contextlib.suppress(Exception):  # an iterator that failed has ended
                _read_to_end(iterator)
        ticket = self.hold(iterators)
        try:
            answered_false = not is_cancelled()
        except Exception:  # the stub is shutting down: finalize drops them all
            return
        if answered_false:
            self.release_through(ticket)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()


class TritonTextSink:
    """A request's response sender, speaking the `text_output` tensor.

    `before_final` runs once, just before the first final response goes out.
    """

    def __init__(self, request: Any, before_final: Callable[[], None] = lambda: None) -> None:
        self._request = request
        self._sender = request.get_response_sender()
        self._before_final: Callable[[], None] | None = before_final

    def send_text(self, text: str, *, final: bool) -> None:
        response = pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor("text_output", text_tensor([[text]]))]
        )
        if final:
            self._finishing()
        self._sender.send(
            response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0
        )

    def send_final(self) -> None:
        self._finishing()
        self._sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def send_error(self, message: str, code: int | None = None) -> None:
        self._send_error(
            pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
        )

    def send_cancelled(self) -> None:
        self._send_error(pb_utils.TritonError("request cancelled", pb_utils.TritonError.CANCELLED))

    def is_cancelled(self) -> bool:
        return bool(self._request.is_cancelled())

    def _send_error(self, error: Any) -> None:
        response = pb_utils.InferenceResponse(error=error)
        self._finishing()
        self._sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def _finishing(self) -> None:
        before_final, self._before_final = self._before_final, None
        if before_final is not None:
            before_final()


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model = ModelArgs.from_triton(args)
        self._model_name = model.name
        self._generation_model = model.text("generation_model")
        self._tokenizer = TextTokenizer.from_dir(
            model.path("tokenizer_dir"),
            add_special_tokens=model.flag("add_special_tokens", default=True),
            skip_special_tokens=model.flag("skip_special_tokens", default=True),
        )
        self._limits = Limits.from_args(model)
        self._cancellation_period_s = (
            model.integer("cancellation_check_period_ms", 100) or 0
        ) / 1000
        self._request_ids = itertools.count()
        self._workers = ThreadPoolExecutor(
            max_workers=model.integer("max_concurrent_streams", 256),
            thread_name_prefix=f"{model.name}-stream",
        )
        self._finished = FinishedStreams()

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            self._workers.submit(self._serve, request)

    def finalize(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._finished.clear()

    def _serve(self, request: Any) -> None:
        iterators: list[Any] = []
        sink = TritonTextSink(
            request, before_final=lambda: self._finished.retire(iterators, request.is_cancelled)
        )
        try:
            plan = plan_generation(
                lambda name: _input(request, name), self._tokenizer, self._limits
            )
        except ValueError as error:  # TextRequestError, or text that is not UTF-8
            sink.send_error(str(error), pb_utils.TritonError.INVALID_ARG)
            return
        generation = TritonGeneration(
            self._generation_model, plan.inputs, self._inner_id(request), iterators
        )
        try:
            relay(
                generation,
                IncrementalDetokenizer(self._tokenizer),
                sink,
                stream=plan.request.stream,
                cancelled=CancellationCheck(sink, self._cancellation_period_s),
                prefix_ids=plan.prompt_ids if plan.request.include_prompt else (),
            )
        except Exception as error:  # the client's stream must end whatever happened
            self._abandon(generation, sink, error)

    def _abandon(
        self, generation: TritonGeneration, sink: TritonTextSink, error: Exception
    ) -> None:
        pb_utils.Logger.log_error(f"{self._model_name}: stream failed: {error!r}")
        with contextlib.suppress(Exception):
            generation.stop()
        with contextlib.suppress(Exception):  # fails if the final response already went out
            sink.send_error(
                f"{self._model_name}: stream failed: {error}", pb_utils.TritonError.INTERNAL
            )

    def _inner_id(self, request: Any) -> str:
        """Unique, so a stop request ends this generation only, whatever id the client sent."""
        client_id = str(request.request_id() or "")
        return f"{self._model_name}-{next(self._request_ids)}-{uuid.uuid4().hex[:8]}-{client_id}"


def _generation_response(response: Any) -> GenerationResponse:
    if response.has_error():
        error = response.error()
        code = error.code() if hasattr(error, "code") else None
        return GenerationResponse(error=str(error.message()), error_code=code)
    output_ids = pb_utils.get_output_tensor_by_name(response, "output_ids")
    if output_ids is None:  # the empty final response
        return GenerationResponse()
    lengths = pb_utils.get_output_tensor_by_name(response, "sequence_length")
    return GenerationResponse(
        token_ids=beam_tokens(
            output_ids.as_numpy(), None if lengths is None else lengths.as_numpy()
        )
    )


def _read_to_end(iterator: Iterator[Any]) -> None:
    """`next` until the end: `for` would restart a finished BLS iterator from its start."""
    with contextlib.suppress(StopIteration):
        while True:
            next(iterator)


def _input(request: Any, name: str) -> npt.NDArray[Any] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
