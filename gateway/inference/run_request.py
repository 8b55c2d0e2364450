"""What a run asks for (`RunRequest`), and how an API reads one from its request
(`RequestParser`), chosen by the task of the model the request names.

The parser is the seam between an API and the pipeline: `RunService.start` finds the model
first and then asks the API's parser for that model's task, so a body that is valid for one
task and not for another is told apart here, not by the route's type, and its refusal is
recorded like the model's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.inference.catalog import CatalogEntry
from gateway.inference.chat_template import ChatMessage
from gateway.inference.embeddings import EmbeddingRequest
from gateway.inference.errors import invalid_input
from gateway.sampling import SamplingParams


@dataclass(frozen=True)
class RunRequest:
    """A text generation, whichever API asked for it: chat `messages` in the model's chat
    template, or a `raw_prompt` sent as it is; `sampling.max_tokens` None means the model's
    maximum output; `stop` strings end the text (see `stop_strings`)."""

    sampling: SamplingParams
    messages: Sequence[ChatMessage] | None = None
    raw_prompt: str | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False


TaskRequest = RunRequest | EmbeddingRequest
"""What a request asks of a model of its task: a text generation, or text embeddings."""

ReadRequest = Callable[[CatalogEntry], TaskRequest]
"""An API's reading of its request for a model of one task; raises `ApiError` (400)."""


@dataclass(frozen=True)
class RequestParser:
    """One request of one API, readable for the tasks that API serves at its endpoint.

    `model` is the name the request gave (the route's path, or the body's `model`); `endpoint`
    names the endpoint in the refusal of a model whose task it does not serve.
    """

    model: str
    endpoint: str
    by_task: Mapping[str, ReadRequest]

    def parse(self, entry: CatalogEntry) -> TaskRequest:
        read = self.by_task.get(entry.task)
        if read is None:
            served = ", ".join(repr(task) for task in self.by_task)
            raise invalid_input(
                f"model '{entry.name}' is a {entry.task!r} model; {self.endpoint} serves "
                f"{served} models",
                param="model",
            )
        return read(entry)
