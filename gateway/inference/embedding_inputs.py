"""An embeddings request's inputs, checked before any of them is tokenized or sent: their
count, size and emptiness, the pooling, then each sequence's tokens (or token ids) against
the model's limit and vocabulary, and all of them against the request's token budget.

Every refusal is a 400 naming the field, and the index of the input at fault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.inference.catalog import CatalogEntry
from gateway.inference.embeddings import EmbeddingRequest, EmbeddingTokenizer
from gateway.inference.errors import invalid_input


@dataclass(frozen=True)
class EmbeddingBounds:
    max_inputs: int
    max_tokens: int
    """Tokens of all the request's inputs together."""
    max_characters: int


def pooling_of(request: EmbeddingRequest, entry: CatalogEntry) -> str:
    pooling = request.pooling or entry.poolings[0]
    if pooling not in entry.poolings:
        served = ", ".join(repr(name) for name in entry.poolings)
        raise invalid_input(
            f"pooling {pooling!r} is not one of this model's: {served}", param="pooling"
        )
    return pooling


def check_inputs(request: EmbeddingRequest, bounds: EmbeddingBounds) -> None:
    """The number of inputs and their characters within the bounds, and none empty."""
    field = request.field
    inputs: Sequence[Sequence[object]] = (
        request.texts if request.texts is not None else request.token_ids or ()
    )
    if not inputs:
        raise invalid_input(f"'{field}' is empty: send at least one input", param=field)
    if len(inputs) > bounds.max_inputs:
        raise invalid_input(
            f"{len(inputs)} inputs, over the limit of {bounds.max_inputs} per request",
            param=field,
        )
    for index, item in enumerate(inputs):
        if not item:
            kind = "string" if request.texts is not None else "list of token ids"
            raise invalid_input(f"{field}[{index}] is an empty {kind}", param=f"{field}[{index}]")
    characters = sum(len(text) for text in request.texts or ())
    if characters > bounds.max_characters:
        raise invalid_input(
            f"{characters} characters of input, over the limit of {bounds.max_characters} "
            "per request",
            param=field,
        )


def check_text_lengths(
    request: EmbeddingRequest, tokenizer: EmbeddingTokenizer, limit: int
) -> None:
    """Texts surely over the limit, from their length alone, refused before tokenizing
    (unless the request asks to cut them)."""
    if request.truncate:
        return
    for index, text in enumerate(request.texts or ()):
        at_least = tokenizer.min_tokens(text)
        if at_least > limit:
            raise input_too_long(request.field, index, at_least, limit, at_least=True)


def token_id_sequences(
    request: EmbeddingRequest, tokenizer: EmbeddingTokenizer, limit: int
) -> list[list[int]]:
    """Each token-id input with the special tokens around it, once within the limit (or cut
    to it) and the vocabulary."""
    return [
        tokenizer.wrap(_known_ids(ids, index, request, tokenizer, limit))
        for index, ids in enumerate(request.token_ids or ())
    ]


def _known_ids(
    ids: Sequence[int],
    index: int,
    request: EmbeddingRequest,
    tokenizer: EmbeddingTokenizer,
    limit: int,
) -> Sequence[int]:
    field, specials = request.field, len(tokenizer.prefix) + len(tokenizer.suffix)
    if request.truncate:
        ids = ids[: limit - specials]
    elif len(ids) + specials > limit:
        raise input_too_long(field, index, len(ids) + specials, limit, at_least=False)
    for position, token_id in enumerate(ids):
        if not 0 <= token_id < tokenizer.vocab_size:
            raise invalid_input(
                f"{field}[{index}][{position}] is {token_id}, not a token id of this model "
                f"(0 to {tokenizer.vocab_size - 1})",
                param=f"{field}[{index}]",
            )
    return ids


def checked_sequences(
    request: EmbeddingRequest,
    sequences: list[list[int]],
    tokenizer: EmbeddingTokenizer,
    limit: int,
    bounds: EmbeddingBounds,
) -> list[list[int]]:
    """The tokenized inputs, cut to the limit if the request asks, each within it, and all
    together within the request's token budget."""
    if request.truncate:
        sequences = [tokenizer.truncated(ids, limit) for ids in sequences]
    for index, ids in enumerate(sequences):
        if len(ids) > limit:
            raise input_too_long(request.field, index, len(ids), limit, at_least=False)
    total = sum(len(ids) for ids in sequences)
    if total > bounds.max_tokens:
        raise invalid_input(
            f"{total} tokens of input, over the limit of {bounds.max_tokens} per request",
            param=request.field,
        )
    return sequences


def input_too_long(field: str, index: int, tokens: int, limit: int, *, at_least: bool) -> ApiError:
    least = "at least " if at_least else ""
    return ApiError(
        400,
        ErrorCode.CONTEXT_WINDOW_EXCEEDED,
        f"{field}[{index}] is {least}{tokens} tokens, over the model's limit of {limit} tokens "
        "per input",
        param=f"{field}[{index}]",
    )
