"""`/client/v4/accounts/{account_id}/ai/…`: run a model, search the catalog."""

from __future__ import annotations

import functools
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from gateway.envelope import Envelope, error_responses, ok
from gateway.inference import encoder
from gateway.inference.api import Api
from gateway.inference.chat_template import ChatMessage
from gateway.inference.errors import RUN_ERRORS, invalid_input
from gateway.inference.responses import event_stream, whole_answer
from gateway.inference.run import RunService
from gateway.inference.schemas import ModelInfo, TextGenerationRequest, TextGenerationResult
from gateway.inference.service import InferenceService, RunRequest
from gateway.inference.streaming import EventStream, StreamSettings
from gateway.inference.triton import SamplingParams
from gateway.tokens.auth import Caller

ERROR_RESPONSES = error_responses(RUN_ERRORS)


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
        runs: RunService,
        stream_settings: StreamSettings,
    ) -> Response[Envelope[TextGenerationResult]] | EventStream:
        model = model.lstrip("/")
        run = await runs.start(
            caller, Api.WORKERS_AI, model, functools.partial(run_request, model, data)
        )
        if not data.stream:
            completion = await whole_answer(run, request)
            return Response(ok(encoder.result(completion)), headers=run.headers)
        return await event_stream(
            run, encoder.sse(run.events(stream_settings.keepalive_seconds)), stream_settings
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


def run_request(model: str, body: TextGenerationRequest) -> RunRequest:
    """Workers AI's body as a run: `prompt` is a user message unless `raw`."""
    if (body.prompt is None) == (body.messages is None):
        raise invalid_input("provide exactly one of 'prompt' or 'messages'")
    sampling = SamplingParams.from_request(body, body.max_tokens)
    if body.messages is not None:
        if body.raw:
            raise invalid_input("'raw' applies to 'prompt' only, not to 'messages'")
        messages = [ChatMessage(m.role, m.content) for m in body.messages]
        return RunRequest(model, sampling, messages=messages)
    if body.raw:
        return RunRequest(model, sampling, raw_prompt=body.prompt)
    assert body.prompt is not None
    return RunRequest(model, sampling, messages=[ChatMessage("user", body.prompt)])
