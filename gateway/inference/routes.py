"""`/client/v4/accounts/{account_id}/ai/…`: run a model, search the catalog."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from gateway.envelope import Envelope, error_responses, ok
from gateway.errors import ApiError
from gateway.inference.errors import client_closed_request
from gateway.inference.refusals import RefusalRecorder
from gateway.inference.schemas import ModelInfo, TextGenerationRequest, TextGenerationResult
from gateway.inference.service import ClientGone, InferenceService
from gateway.inference.streaming import SSE_HEADERS, EventStream, FirstThenRest, StreamOptions
from gateway.inference.tracking import RunTracker
from gateway.limits.service import LimitsService
from gateway.metrics.registry import GatewayMetrics
from gateway.tokens.auth import Caller
from gateway.usage.meter import UsageMeter

ERROR_RESPONSES = error_responses(
    {
        400: "Bad input, prompt over the context length, or max_tokens over the model's output",
        401: "Missing, invalid, revoked or expired API token",
        403: "The token belongs to another account",
        404: "No such model",
        413: "Request body too large",
        429: "A rate limit, the concurrency limit or the monthly token quota is reached",
        502: "The model backend failed the request",
        503: "The model backend is unavailable, or usage cannot be recorded right now",
    }
)


class InferenceController(Controller):
    path = "/client/v4/accounts/{account_id:str}/ai"
    tags = ["Workers AI"]  # noqa: RUF012

    @post(
        "/run/{model:path}",
        status_code=200,
        summary="Run a text-generation model",
        description=(
            "With `stream: false`, the generated text and token usage. With `stream: true`, "
            'Server-Sent Events: `data: {"response": "…"}` per text piece, a last event '
            "with `usage`, then `data: [DONE]`; an error after streaming began arrives as an "
            "event carrying the error envelope, and the stream ends."
        ),
        responses={
            200: ResponseSpec(
                data_container=Envelope[TextGenerationResult],
                description="The result, or (stream: true) a text/event-stream",
            ),
            **ERROR_RESPONSES,
        },
    )
    async def run(
        self,
        model: str,
        data: TextGenerationRequest,
        request: Request[Any, Any, Any],
        caller: Caller,
        inference: InferenceService,
        limits: LimitsService,
        meter: UsageMeter,
        metrics: GatewayMetrics,
        stream_options: StreamOptions,
    ) -> Response[Envelope[TextGenerationResult]] | EventStream:
        model = model.lstrip("/")
        request_id = uuid.uuid4().hex
        refused = RefusalRecorder(meter, metrics, caller, request_id, model, inference)
        with refused.as_status("rate_limited"):
            admission = await limits.admit_request(caller.account_id, request_id)
        with refused.as_status("rejected", admission.headers):
            generation = await inference.prepare(model, data, request_id)
        prompt_tokens = len(generation.input_ids)
        with refused.as_status("rate_limited"):
            await limits.admit_generation(admission, prompt_tokens + data.max_tokens)
        try:
            metered = meter.open(
                request_id, caller.account_id, caller.token_id, generation.entry.name, prompt_tokens
            )
        except ApiError as error:
            await limits.settle(admission, 0)
            error.headers.update(admission.headers)
            raise
        tracker = RunTracker(
            generation.entry.name, caller.account_id, prompt_tokens, admission, metered, limits,
            metrics,
        )  # fmt: skip
        headers = admission.headers
        try:
            if not data.stream:
                client_gone = functools.partial(_client_gone, request)
                try:
                    result = await generation.complete(tracker, client_gone)
                except ClientGone as gone:
                    raise client_closed_request() from gone
                return Response(ok(result), headers=headers)
            events = generation.sse_events(stream_options.keepalive_seconds, tracker)
            first = await anext(events)
        except ApiError as error:
            error.headers.update(headers)
            raise
        return EventStream(
            FirstThenRest(first, events),
            headers={**SSE_HEADERS, **headers},
            send_timeout=stream_options.send_timeout_seconds,
            buffer_bytes=stream_options.buffer_bytes,
        )

    @get(
        "/models/search",
        summary="List the models this account can run",
        responses=ERROR_RESPONSES,
    )
    async def search_models(
        self, caller: Caller, inference: InferenceService
    ) -> Envelope[list[ModelInfo]]:
        return ok(
            [
                ModelInfo(
                    name=entry.name,
                    description=entry.description,
                    task=entry.task,
                    context_length=entry.max_input_tokens,
                    sequence_length=entry.max_output_tokens,
                    precision=entry.precision,
                )
                for entry in inference.catalog
            ]
        )


async def _client_gone(request: Request[Any, Any, Any]) -> None:
    """Returns once the client has disconnected: its body was read, so nothing else arrives."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
