"""Usage reports: an account's own (`…/ai/usage`) and every account's (`/admin/v1/usage`)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin import ADMIN_ERROR_RESPONSES
from gateway.db.base import in_utc
from gateway.envelope import Envelope, error_responses, ok
from gateway.error_codes import ErrorCode
from gateway.errors import ApiError
from gateway.paging import PagedEnvelope, PageRequest, paged, paging
from gateway.tokens.auth import Caller
from gateway.usage.client_request_id import FORM, MAX_LENGTH, PATTERN, is_client_request_id
from gateway.usage.meter import UsageMeter
from gateway.usage.schemas import (
    AccountGrouping,
    AdminGrouping,
    AdminUsageReport,
    UsageRecordRead,
    UsageReport,
)
from gateway.usage.service import UsageService, period

SINCE = Parameter(
    description="Start (ISO 8601 date or time, UTC if no offset); default: start of this month"
)
UNTIL = Parameter(description="End, exclusive (ISO 8601); default: now")
CLIENT_REQUEST_ID = Parameter(
    default=None,
    description="The client's `X-Request-Id` of the run (exact match; a client may reuse one)",
    schema_extra={"pattern": PATTERN, "maxLength": MAX_LENGTH},
)


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = in_utc(datetime.fromisoformat(value))
    except ValueError:
        moment = None
    if moment is None:
        raise ApiError(
            400,
            ErrorCode.BAD_INPUT,
            f"Bad input: '{name}' is not an ISO 8601 date or time within years 1-9999 UTC: "
            f"{value!r}",
        )
    return moment


def _client_request_id(value: str | None) -> str | None:
    if value is not None and not is_client_request_id(value):
        raise ApiError(
            400,
            ErrorCode.BAD_INPUT,
            f"Bad input: 'client_request_id' is {FORM}",
            param="client_request_id",
        )
    return value


async def _report(
    session: AsyncSession,
    since: str | None,
    until: str | None,
    group_by: str,
    account_id: str | None,
) -> UsageReport:
    start, end = period(_moment("since", since), _moment("until", until))
    rows = await UsageService(session).totals(start, end, group_by, account_id)
    return UsageReport(start.isoformat(), end.isoformat(), group_by, rows)


class AccountUsageController(Controller):
    path = "/client/v4/accounts/{account_id:str}/ai/usage"
    tags = ["Workers AI"]  # noqa: RUF012

    @get(
        "/",
        summary="This account's usage over a period",
        responses=error_responses({400: "Bad input", 401: "Bad token", 403: "Other account"}),
    )
    async def usage(
        self,
        caller: Caller,
        db_session: AsyncSession,
        group_by: AccountGrouping = "day",
        since: str | None = SINCE,
        until: str | None = UNTIL,
    ) -> Envelope[UsageReport]:
        return ok(await _report(db_session, since, until, group_by, caller.account_id))


class AdminUsageController(Controller):
    path = "/usage"
    tags = ["Admin"]  # noqa: RUF012
    responses = ADMIN_ERROR_RESPONSES

    @get("/", summary="Usage of every account over a period")
    async def usage(
        self,
        db_session: AsyncSession,
        meter: UsageMeter,
        group_by: AdminGrouping = "account",
        since: str | None = SINCE,
        until: str | None = UNTIL,
        account_id: str | None = None,
    ) -> Envelope[AdminUsageReport]:
        report = await _report(db_session, since, until, group_by, account_id)
        return ok(
            AdminUsageReport(
                report.since, report.until, report.group_by, report.rows, meter.pending
            )
        )

    @get(
        "/records",
        summary="Individual usage records, newest first",
        dependencies={"page_request": paging(default_per_page=100)},
    )
    async def records(
        self,
        db_session: AsyncSession,
        page_request: PageRequest,
        since: str | None = SINCE,
        until: str | None = UNTIL,
        account_id: str | None = None,
        request_id: str | None = Parameter(
            default=None,
            description="The run's id: its `x-run-id` response header (and `x-request-id` when "
            "the client sent none)",
        ),
        client_request_id: str | None = CLIENT_REQUEST_ID,
    ) -> PagedEnvelope[UsageRecordRead]:
        start, end = period(_moment("since", since), _moment("until", until))
        records, total = await UsageService(db_session).records(
            start,
            end,
            account_id,
            request_id,
            client_request_id=_client_request_id(client_request_id),
            page=page_request,
        )
        return paged(records, total, page_request)
