"""`/client/v4/accounts/{account_id}/ai/…`: run a model, search the catalog."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from gateway.envelope import Envelope, error_responses, ok
from gateway.inference.api import Api
from gateway.inference.catalog import TEXT_EMBEDDINGS, CatalogEntry
from gateway.inference.embeddings import EmbeddingRun
from gateway.inference.errors import RUN_ERRORS, invalid_input
from gateway.inference.request_ids import CLIENT_REQUEST_ID, ClientRequestId
from gateway.inference.responses import embedding_result, event_stream, whole_answer
from gateway.inference.run_service import RunService
from gateway.inference.service import InferenceService
from gateway.inference.streaming import EventStream, StreamSettings
from gateway.paging import PagedEnvelope, PageRequest, page_of, paging
from gateway.tokens.auth import Caller
from gateway.workers_ai import encoder
from gateway.workers_ai.requests import run_parser
from gateway.workers_ai.schemas import (
    RUN_BODY_DECODERS,
    ModelInfo,
    RunBody,
    TextEmbeddingsResult,
    TextGenerationResult,
)

ERROR_RESPONSES = error_responses(RUN_ERRORS)


class WorkersAiController(Controller):
    path = "/client/v4/accounts/{account_id:str}/ai"
    tags = ["Workers AI"]  # noqa: RUF012

    @post(
        "/run/{model:path}",
        status_code=200,
        summary="Run a model",
        description=(
            "Text generation: with `stream: false`, the generated text and token usage. With "
            '`stream: true`, Server-Sent Events: `data: {"response": "…"}` per text piece, a '
            "last event with `usage`, then `data: [DONE]`; an error after streaming began "
            "arrives as an event carrying the error envelope, and the stream ends. "
            'Text embeddings: `{"text": "…" | ["…", …]}` → `shape`, `data` (one '
            "unit-length vector per text) and `pooling`."
        ),
        type_decoders=RUN_BODY_DECODERS,
        dependencies=CLIENT_REQUEST_ID,
        responses={
            200: ResponseSpec(
                data_container=Envelope[TextGenerationResult | TextEmbeddingsResult],
                description="The result, or (stream: true) a text/event-stream",
            ),
            **ERROR_RESPONSES,
        },
    )
    async def run(
        self,
        model: str,
        data: RunBody,
        request: Request[Any, Any, Any],
        caller: Caller,
        client_request_id: ClientRequestId,
        runs: RunService,
        stream_settings: StreamSettings,
    ) -> Response[Envelope[TextGenerationResult | TextEmbeddingsResult]] | EventStream:
        parser = run_parser(model.lstrip("/"), data)
        run = await runs.start(caller, Api.WORKERS_AI, parser, client_request_id)
        if isinstance(run, EmbeddingRun):
            embedded = await embedding_result(run, request)
            return Response(ok(encoder.embeddings_result(embedded)), headers=run.headers)
        if not run.stream:
            completion = await whole_answer(run, request)
            return Response(ok(encoder.result(completion)), headers=run.headers)
        return await event_stream(
            run, encoder.sse(run.events(stream_settings.keepalive_seconds)), stream_settings
        )

    @get(
        "/models/search",
        summary="List the models this account can run",
        description=(
            "Paged as Cloudflare's lists are (`page`, `per_page`, `result_info`). `search` "
            "keeps the models whose name or description contains it, `task` those of that "
            "task (`Text Generation`, `Text Embeddings`), both ignoring case. "
            "`hide_experimental` and `include_deprecated` are accepted and change nothing: "
            "the catalog has no experimental or deprecated models. Workers AI's `author`, "
            "`source` and `format` are refused (400): the catalog does not record them."
        ),
        responses=ERROR_RESPONSES,
        dependencies={"page_request": paging(default_per_page=20)},
    )
    async def search_models(
        self,
        caller: Caller,
        inference: InferenceService,
        page_request: PageRequest,
        search: str | None = Parameter(
            default=None, max_length=256, description="Text in the name or description"
        ),
        task: str | None = Parameter(
            default=None, max_length=256, description="Task name, e.g. `Text Generation`"
        ),
        hide_experimental: bool = False,
        include_deprecated: bool = False,
        author: str | None = Parameter(default=None, include_in_schema=False),
        source: str | None = Parameter(default=None, include_in_schema=False),
        format: str | None = Parameter(default=None, include_in_schema=False),
    ) -> PagedEnvelope[ModelInfo]:
        unsupported = [
            name
            for name, value in (("author", author), ("source", source), ("format", format))
            if value is not None
        ]
        if unsupported:
            raise invalid_input(
                f"models/search does not filter by {', '.join(unsupported)}: "
                "the catalog does not record it"
            )
        found = inference.catalog.search(search, task)
        return page_of([_model_info(entry) for entry in found], page_request)


def _model_info(entry: CatalogEntry) -> ModelInfo:
    embeddings = entry.task == TEXT_EMBEDDINGS
    return ModelInfo(
        name=entry.name,
        description=entry.description,
        task=entry.task,
        context_length=entry.max_input_tokens,
        precision=entry.precision,
        sequence_length=None if embeddings else entry.max_output_tokens,
        dimensions=entry.dimensions,
        poolings=list(entry.poolings) if embeddings else None,
    )
