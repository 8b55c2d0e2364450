"""Cloudflare's response envelope, used by every JSON response of the gateway."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from litestar.openapi.datastructures import ResponseSpec

T = TypeVar("T")


class ErrorDetail(msgspec.Struct, frozen=True):
    code: int
    message: str


class Envelope(msgspec.Struct, Generic[T], frozen=True):
    result: T
    success: bool = True
    errors: list[ErrorDetail] = msgspec.field(default_factory=list)
    messages: list[str] = msgspec.field(default_factory=list)


class ErrorEnvelope(msgspec.Struct, frozen=True):
    errors: list[ErrorDetail]
    result: None = None
    success: bool = False
    messages: list[str] = msgspec.field(default_factory=list)


def ok(result: T) -> Envelope[T]:
    return Envelope(result=result)


def error_responses(descriptions: dict[int, str]) -> dict[int, ResponseSpec]:
    """OpenAPI entries for error statuses, all answered with the error envelope."""
    return {
        status: ResponseSpec(data_container=ErrorEnvelope, description=description)
        for status, description in descriptions.items()
    }
