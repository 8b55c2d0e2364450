"""OpenAI's request bodies as runs: what maps onto the pipeline, and what is refused by name.

Refused (400, naming the field) rather than served without: several choices (`n`, `best_of`),
log probabilities, tool and function calling, structured output, `logit_bias`, `echo`,
`suffix`, `store`, content other than text, and several prompts in one request.
"""

from __future__ import annotations

import functools
from typing import Any

from gateway.errors import ApiError
from gateway.inference.catalog import TEXT_EMBEDDINGS, TEXT_GENERATION, CatalogEntry
from gateway.inference.chat_template import ChatMessage
from gateway.inference.embeddings import EmbeddingRequest
from gateway.inference.errors import invalid_input
from gateway.inference.run_request import RequestParser, RunRequest
from gateway.openai_api import schemas
from gateway.sampling import SamplingParams

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
"""OpenAI's roles the models' chat templates know; `developer` is OpenAI's newer `system`."""


def unsupported(param: str, why: str) -> ApiError:
    return invalid_input(f"'{param}' is not supported: {why}", param=param)


CHAT_ENDPOINT = "chat/completions"
COMPLETIONS_ENDPOINT = "completions"


def chat_parser(body: schemas.ChatCompletionRequest) -> RequestParser:
    return RequestParser(body.model, CHAT_ENDPOINT, {TEXT_GENERATION: lambda entry: chat_run(body)})


def completion_parser(body: schemas.CompletionRequest) -> RequestParser:
    return RequestParser(
        body.model, COMPLETIONS_ENDPOINT, {TEXT_GENERATION: lambda entry: completion_run(body)}
    )


EMBEDDINGS_ENDPOINT = "embeddings"
INPUT_SHAPES = "a string, a list of strings, a list of token ids or a list of lists of token ids"


def embeddings_parser(body: schemas.EmbeddingRequest) -> RequestParser:
    return RequestParser(
        body.model,
        EMBEDDINGS_ENDPOINT,
        {TEXT_EMBEDDINGS: functools.partial(embeddings_request, body)},
    )


def embeddings_request(body: schemas.EmbeddingRequest, entry: CatalogEntry) -> EmbeddingRequest:
    """OpenAI's four input shapes; `dimensions` only as the model's own (no shortening)."""
    if body.dimensions is not None and body.dimensions != entry.dimensions:
        raise unsupported(
            "dimensions",
            f"this model's vectors have {entry.dimensions} dimensions, and are not shortened",
        )
    items = body.input
    if isinstance(items, str):
        return EmbeddingRequest("input", texts=(items,))
    if all(isinstance(item, str) for item in items):
        return EmbeddingRequest("input", texts=tuple(items))
    if all(_is_token_id(item) for item in items):
        return EmbeddingRequest("input", token_ids=(tuple(items),))
    if all(isinstance(item, list) and all(map(_is_token_id, item)) for item in items):
        return EmbeddingRequest("input", token_ids=tuple(tuple(item) for item in items))
    raise invalid_input(f"'input' must be {INPUT_SHAPES}", param="input")


def _is_token_id(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def chat_run(body: schemas.ChatCompletionRequest) -> RunRequest:
    _refuse_unsupported(body)
    _refuse_if(body.logprobs, "logprobs", "log probabilities are not returned")
    _refuse_if(body.top_logprobs is not None, "top_logprobs", "log probabilities are not returned")
    for name in ("tools", "functions"):
        _refuse_if(getattr(body, name), name, "the models here do not call tools")
    for name in ("tool_choice", "function_call"):
        choice = getattr(body, name)
        _refuse_if(choice not in (None, "none"), name, "the models here do not call tools")
    format_type = body.response_format.type if body.response_format else "text"
    _refuse_if(
        format_type != "text", "response_format", f"only 'text' is served, not {format_type!r}"
    )
    _refuse_if(body.store, "store", "completions are not stored")
    if (
        body.max_tokens is not None
        and body.max_completion_tokens is not None
        and body.max_tokens != body.max_completion_tokens
    ):
        raise invalid_input(
            "'max_tokens' and 'max_completion_tokens' differ: send one of them",
            param="max_completion_tokens",
        )
    max_tokens = body.max_completion_tokens or body.max_tokens
    messages = [_message(index, message) for index, message in enumerate(body.messages)]
    return RunRequest(
        SamplingParams.from_request(body, max_tokens),
        messages=messages,
        stop=_stop(body.stop),
        stream=bool(body.stream),
    )


def completion_run(body: schemas.CompletionRequest) -> RunRequest:
    _refuse_unsupported(body)
    _refuse_if(body.logprobs is not None, "logprobs", "log probabilities are not returned")
    _refuse_if(body.echo, "echo", "the prompt is not echoed")
    _refuse_if(body.best_of not in (None, 1), "best_of", "one completion is generated")
    _refuse_if(body.suffix is not None, "suffix", "the models here do not fill in the middle")
    return RunRequest(
        SamplingParams.from_request(body, body.max_tokens),
        raw_prompt=_prompt(body.prompt),
        stop=_stop(body.stop),
        stream=bool(body.stream),
    )


def _refuse_unsupported(body: schemas.ChatCompletionRequest | schemas.CompletionRequest) -> None:
    _refuse_if(body.n not in (None, 1), "n", "one choice is generated per request")
    _refuse_if(body.logit_bias, "logit_bias", "the backend does not bias tokens")
    _refuse_if(
        body.stream_options is not None and not body.stream,
        "stream_options",
        "it applies only with 'stream': true",
    )


def _refuse_if(condition: object, param: str, why: str) -> None:
    if condition:
        raise unsupported(param, why)


def _message(index: int, message: schemas.ChatMessage) -> ChatMessage:
    where = f"messages[{index}]"
    role = ROLES.get(message.role)
    if role is None:
        why = (
            "the models here do not call tools"
            if message.role in ("tool", "function")
            else "roles are system, developer, user and assistant"
        )
        raise unsupported(f"{where}.role", f"{message.role!r}: {why}")
    for name in ("tool_calls", "tool_call_id", "function_call"):
        _refuse_if(getattr(message, name), f"{where}.{name}", "the models here do not call tools")
    _refuse_if(message.name is not None, f"{where}.name", "the chat templates have no names")
    if message.content is None:
        raise invalid_input(f"{where}.content is missing", param=f"{where}.content")
    return ChatMessage(role, _text(message.content, f"{where}.content"))


def _text(content: str | list[dict[str, Any]], where: str) -> str:
    """A string, or text parts joined by newlines (as vLLM joins them)."""
    if isinstance(content, str):
        return content
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type")
        text = part.get("text")
        if kind != "text":
            raise unsupported(f"{where}[{index}]", f"{kind!r} content: only text parts are served")
        if not isinstance(text, str) or set(part) != {"type", "text"}:
            raise invalid_input(
                f"{where}[{index}] is not a text part: {{'type': 'text', 'text': '…'}}",
                param=f"{where}[{index}]",
            )
        texts.append(text)
    return "\n".join(texts)


def _prompt(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        if not prompt:
            raise invalid_input("'prompt' is empty", param="prompt")
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return _prompt(prompt[0])
    if prompt and all(isinstance(item, int) for item in prompt):
        raise unsupported("prompt", "send the prompt as text, not token ids")
    raise unsupported("prompt", "one prompt per request (as one string)")


def _stop(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)
