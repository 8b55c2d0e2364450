"""Cloudflare v4 paging for every list of the Cloudflare-shaped API: `page` (from 1) and
`per_page` in, `result_info` out.

Cloudflare's SDKs ask for the next page until one comes back empty, so a page past the end
must be empty: a list that ignored `page` would be fetched forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import msgspec
from litestar.di import Provide
from litestar.params import Parameter
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.envelope import ErrorDetail

T = TypeVar("T")
Row = TypeVar("Row")

MAX_PER_PAGE = 1000


class PageRequest(msgspec.Struct, frozen=True):
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


class ResultInfo(msgspec.Struct, frozen=True):
    page: int
    per_page: int
    count: int
    """Items on this page."""
    total_count: int
    total_pages: int


class PagedEnvelope(msgspec.Struct, Generic[T], frozen=True):
    """The envelope of a list: Cloudflare's, with `result_info`."""

    result: list[T]
    result_info: ResultInfo
    success: bool = True
    errors: list[ErrorDetail] = msgspec.field(default_factory=list)
    messages: list[str] = msgspec.field(default_factory=list)


def paged(items: list[T], total_count: int, request: PageRequest) -> PagedEnvelope[T]:
    total_pages = -(-total_count // request.per_page)
    info = ResultInfo(request.page, request.per_page, len(items), total_count, total_pages)
    return PagedEnvelope(result=items, result_info=info)


def page_of(items: Sequence[T], request: PageRequest) -> PagedEnvelope[T]:
    """The page of a list held whole (the catalog)."""
    start = request.offset
    return paged(list(items[start : start + request.per_page]), len(items), request)


async def fetch_page(
    session: AsyncSession, statement: Select[Row], request: PageRequest
) -> tuple[list[Row], int]:
    """One page of `statement`'s rows (its order must be total, or pages overlap) and how many
    rows there are in all; a page past the end costs only the count."""
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total = await session.scalar(counted) or 0
    if request.offset >= total:
        return [], total
    rows = await session.scalars(statement.offset(request.offset).limit(request.per_page))
    return list(rows), total


async def every_page(
    fetch: Callable[[PageRequest], Awaitable[tuple[list[T], int]]],
) -> list[T]:
    """All of a list, page by page (the CLI's whole listings)."""
    items: list[T] = []
    page = 1
    while True:
        chunk, total = await fetch(PageRequest(page, MAX_PER_PAGE))
        items.extend(chunk)
        if not chunk or len(items) >= total:
            return items
        page += 1


def paging(default_per_page: int) -> Provide:
    """The `page_request` dependency of a list endpoint: `page` and `per_page` from the query,
    validated (a 400 in the envelope) and documented in the schema."""

    def provide_page_request(
        page: int = Parameter(
            ge=1, default=1, description="Page number, from 1; a page past the end is empty"
        ),
        per_page: int = Parameter(
            ge=1,
            le=MAX_PER_PAGE,
            default=default_per_page,
            description=f"Items per page (1-{MAX_PER_PAGE}, default {default_per_page})",
        ),
    ) -> PageRequest:
        return PageRequest(page, per_page)

    return Provide(provide_page_request, sync_to_thread=False)
