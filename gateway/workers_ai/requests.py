"""Workers AI's run body as a run, read for the task of the model it names."""

from __future__ import annotations

import functools

from gateway.inference.catalog import TEXT_EMBEDDINGS, TEXT_GENERATION, CatalogEntry
from gateway.inference.chat_template import ChatMessage
from gateway.inference.embeddings import EmbeddingRequest
from gateway.inference.errors import invalid_input
from gateway.inference.run_request import RequestParser, RunRequest
from gateway.sampling import SamplingParams
from gateway.workers_ai.schemas import RunBody, TextEmbeddingsRequest, TextGenerationRequest

ENDPOINT = "…/ai/run/{model}"


def run_parser(model: str, body: RunBody) -> RequestParser:
    """The reading of `body` for each task a run serves."""
    return RequestParser(
        model,
        ENDPOINT,
        {
            TEXT_GENERATION: functools.partial(text_generation, body),
            TEXT_EMBEDDINGS: functools.partial(text_embeddings, body),
        },
    )


def text_embeddings(body: RunBody, entry: CatalogEntry) -> EmbeddingRequest:
    request = body.read(TextEmbeddingsRequest)
    texts = (request.text,) if isinstance(request.text, str) else tuple(request.text)
    return EmbeddingRequest(
        "text", texts=texts, pooling=request.pooling, truncate=request.truncate_inputs
    )


def text_generation(body: RunBody, entry: CatalogEntry) -> RunRequest:
    return text_generation_run(body.read(TextGenerationRequest))


def text_generation_run(body: TextGenerationRequest) -> RunRequest:
    """`prompt` is a user message unless `raw`; or `messages`."""
    if (body.prompt is None) == (body.messages is None):
        raise invalid_input("provide exactly one of 'prompt' or 'messages'")
    sampling = SamplingParams.from_request(body, body.max_tokens)
    if body.messages is not None:
        if body.raw:
            raise invalid_input("'raw' applies to 'prompt' only, not to 'messages'")
        messages = [ChatMessage(m.role, m.content) for m in body.messages]
        return RunRequest(sampling, messages=messages, stream=body.stream)
    if body.raw:
        return RunRequest(sampling, raw_prompt=body.prompt, stream=body.stream)
    assert body.prompt is not None
    return RunRequest(sampling, messages=[ChatMessage("user", body.prompt)], stream=body.stream)
