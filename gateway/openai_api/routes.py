"""`…/ai/v1/chat/completions`, `…/completions`, `…/embeddings`, `…/models`: OpenAI's API, at two
base URLs: `/client/v4/accounts/{account_id}/ai/v1` (as Workers AI serves it) and `/v1`, where
the token alone names the account."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec

from gateway.inference.api import Api
from gateway.inference.catalog import TEXT_EMBEDDINGS, CatalogEntry
from gateway.inference.errors import RUN_ERRORS, unknown_model
from gateway.inference.request_ids import CLIENT_REQUEST_ID, ClientRequestId
from gateway.inference.responses import embedding_result, event_stream, whole_answer
from gateway.inference.run import Run
from gateway.inference.run_service import RunService
from gateway.inference.service import InferenceService
from gateway.inference.streaming import EventStream, StreamSettings
from gateway.openai_api import encoder, requests, schemas
from gateway.openai_api.base_urls import ACCOUNT_BASE_URL, SHORT_BASE_URL
from gateway.tokens.auth import Caller, provide_token_caller

ERROR_RESPONSES = {
    status: ResponseSpec(data_container=schemas.ErrorBody, description=description)
    for status, description in RUN_ERRORS.items()
}
STREAM_DESCRIPTION = (
    "With `stream: true`, Server-Sent Events of chunks, then `data: [DONE]`; an error after "
    'the stream began arrives as `data: {"error": …}` and the stream ends.'
)


class OpenAIController(Controller):
    tags = ["OpenAI"]  # noqa: RUF012
    dependencies = CLIENT_REQUEST_ID

    @post(
        "/chat/completions",
        status_code=200,
        summary="Create a chat completion",
        description=STREAM_DESCRIPTION,
        responses={
            200: ResponseSpec(
                data_container=schemas.ChatCompletion,
                description="The completion, or (stream: true) a text/event-stream",
            ),
            **ERROR_RESPONSES,
        },
    )
    async def chat_completions(
        self,
        data: schemas.ChatCompletionRequest,
        request: Request[Any, Any, Any],
        caller: Caller,
        client_request_id: ClientRequestId,
        runs: RunService,
        stream_settings: StreamSettings,
    ) -> Response[schemas.ChatCompletion] | EventStream:
        parser = requests.chat_parser(data)
        run = await runs.start_generation(caller, Api.OPENAI, parser, client_request_id)
        return await _answer(run, data, request, stream_settings, chat=True)

    @post(
        "/completions",
        status_code=200,
        summary="Create a completion (the prompt as it is, no chat template)",
        description=STREAM_DESCRIPTION,
        responses={
            200: ResponseSpec(
                data_container=schemas.Completion,
                description="The completion, or (stream: true) a text/event-stream",
            ),
            **ERROR_RESPONSES,
        },
    )
    async def completions(
        self,
        data: schemas.CompletionRequest,
        request: Request[Any, Any, Any],
        caller: Caller,
        client_request_id: ClientRequestId,
        runs: RunService,
        stream_settings: StreamSettings,
    ) -> Response[schemas.Completion] | EventStream:
        parser = requests.completion_parser(data)
        run = await runs.start_generation(caller, Api.OPENAI, parser, client_request_id)
        return await _answer(run, data, request, stream_settings, chat=False)

    @post(
        "/embeddings",
        status_code=200,
        summary="Create embeddings",
        description=(
            "One unit-length vector per input (a string, a list of strings, a list of token "
            "ids or a list of lists of token ids), as floats or (`encoding_format: base64`) "
            "little-endian float32 bytes; `usage.prompt_tokens` counts every input's tokens."
        ),
        responses={
            200: ResponseSpec(data_container=schemas.EmbeddingList, description="The vectors"),
            **ERROR_RESPONSES,
        },
    )
    async def embeddings(
        self,
        data: schemas.EmbeddingRequest,
        request: Request[Any, Any, Any],
        caller: Caller,
        client_request_id: ClientRequestId,
        runs: RunService,
    ) -> Response[schemas.EmbeddingList]:
        parser = requests.embeddings_parser(data)
        run = await runs.start_embedding(caller, Api.OPENAI, parser, client_request_id)
        embedded = await embedding_result(run, request)
        body = encoder.embedding_list(run, embedded, data.encoding_format)
        return Response(body, headers=run.headers)

    @get("/models", summary="List the models", responses=ERROR_RESPONSES)
    async def list_models(self, caller: Caller, inference: InferenceService) -> schemas.ModelList:
        return schemas.ModelList([_model(entry, inference) for entry in inference.catalog])

    @get("/models/{model:path}", summary="Describe a model", responses=ERROR_RESPONSES)
    async def retrieve_model(
        self, model: str, caller: Caller, inference: InferenceService
    ) -> schemas.Model:
        entry = inference.catalog.get(model.lstrip("/"))
        if entry is None:
            raise unknown_model(model.lstrip("/"))
        return _model(entry, inference)


async def _answer(
    run: Run,
    body: schemas.ChatCompletionRequest | schemas.CompletionRequest,
    request: Request[Any, Any, Any],
    stream_settings: StreamSettings,
    *,
    chat: bool,
) -> Response[Any] | EventStream:
    if not run.stream:
        completion = await whole_answer(run, request)
        encode = encoder.chat_completion if chat else encoder.text_completion
        return Response(encode(run, completion), headers=run.headers)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = run.events(stream_settings.keepalive_seconds)
    return await event_stream(
        run, encoder.sse(run, events, chat=chat, include_usage=include_usage), stream_settings
    )


OWNER = "llm-gateway"


def _model(entry: CatalogEntry, inference: InferenceService) -> schemas.Model:
    embeddings = entry.task == TEXT_EMBEDDINGS
    return schemas.Model(
        id=entry.name,
        created=inference.loaded_at,
        owned_by=OWNER,
        context_length=entry.max_input_tokens,
        max_output_tokens=None if embeddings else entry.max_output_tokens,
        task=entry.task,
        dimensions=entry.dimensions,
    )


def openai_routers() -> list[Router]:
    """The API at both base URLs (errors there are OpenAI's: `gateway.error_format`)."""
    return [
        Router(path=ACCOUNT_BASE_URL, route_handlers=[OpenAIController]),
        Router(
            path=SHORT_BASE_URL,
            route_handlers=[OpenAIController],
            dependencies={"caller": Provide(provide_token_caller)},
        ),
    ]
