"""What a run hands its API's encoder: its result (`Completion`), or its events as they
happen (`RunEvent`); nothing here knows a wire format."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import msgspec

from gateway.errors import ApiError
from gateway.inference.streaming import Heartbeat


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FinishReason(StrEnum):
    STOP = "stop"
    """The model ended its answer, or a stop string matched."""
    LENGTH = "length"
    """The answer reached `max_tokens`."""


class TextPiece(NamedTuple):
    text: str
    tokens: int
    """Completion tokens received up to this piece (the Workers AI event's `id`)."""


@dataclass(frozen=True)
class TextDelta:
    """Text that arrived together (one write to the client)."""

    pieces: list[TextPiece]


@dataclass(frozen=True)
class RunEnd:
    pieces: list[TextPiece]
    """The last text, held back until the generation ended (possibly none)."""
    usage: Usage
    finish_reason: FinishReason


@dataclass(frozen=True)
class RunFailed:
    """The backend failed after the stream began: the last event the client gets."""

    error: ApiError


RunEvent = TextDelta | Heartbeat | RunEnd | RunFailed


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: FinishReason
