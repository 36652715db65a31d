"""Reconciliation's HTTP routes, mounted by the API (``Reconciliation.routes``): payouts,
exceptions and the clearing tie-out for ``read`` keys (JSON, or CSV or Excel as ``Accept`` asks:
``hub.spi.exports``; paged by ``next``), one order's chain (JSON), and resolving an exception,
which appends an event.

Resolving needs a key that may append for source ``reconciliation:manual`` (scope
``ingest:reconciliation:manual``, or ``ingest:*``) in its tenant (``POST
/v1/reconciliation/resolutions``): a resolution writes to the log
and hides an exception, so a ``read`` key (a BI tool's) must not be able to do it, and it is the
tenant's own business rather than an operator's. The event is
``reconciliation.exception.resolved`` (or ``.reopened``) with ``{"exception_id", "reason"}``;
the projection applies it, so it is audited and survives rebuilds. The answer is 202: the
exception shows ``resolved`` once the worker has applied the event.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from hub.domain.events import NewEvent
from hub.errors import Forbidden, NotFound
from hub.spi.exports import file_response
from hub.spi.http import (
    Access,
    ApiRoute,
    Connection,
    Header,
    PageCursor,
    append,
    current_key,
    json_response,
    read_json,
    read_tenant,
    reading,
    request_meta,
    requires,
    validate,
)
from projections.reconciliation import queries
from projections.reconciliation.extract import REOPENED, RESOLVED
from projections.reconciliation.reports import (
    ReconciliationReports,
    clearing_cursor,
    clearing_next,
)

RESOLUTION_SOURCE = "reconciliation:manual"
"""The source of resolutions made through this API."""

PayoutStatus = Literal["matched", "pending", "missing_deposit", "amount_mismatch"]

KNOWN_KINDS = (
    "missing_deposit", "amount_mismatch", "unexplained_deposit", "payment_without_order",
    "order_unpaid", "duplicate_bank_line", "composition_mismatch", "document_missing",
)  # fmt: skip
"""The exception kinds of this version, as documented. Rows and filters take any kind, so a kind
the projection adds is listed (and filtered on) without an edit here, and an older client meets
an unknown kind rather than an error."""

_KNOWN = {"type": "string", "enum": list(KNOWN_KINDS)}
_DESCRIBED = (
    f"The kind of exception: {', '.join(KNOWN_KINDS)}; a later version may add kinds (treat an "
    "unknown one as an exception to look at)."
)
_WORD = r"^[a-z][a-z0-9_]*$"

ExceptionKind = Annotated[
    str,
    WithJsonSchema({"anyOf": [_KNOWN, {"type": "string"}], "description": _DESCRIBED}),
]
"""An exception's kind, as the projection stored it; the OpenAPI document lists the known ones."""

KindFilter = Annotated[
    str,
    Field(pattern=_WORD, max_length=100),
    WithJsonSchema(
        {
            "anyOf": [_KNOWN, {"type": "string", "pattern": _WORD, "maxLength": 100}],
            "description": _DESCRIBED,
        }
    ),
]
"""The kind to list: a known one, or any other lower-case word (which lists what has it)."""


class _PageQuery(BaseModel):
    """What every list route takes: statuses evaluated on ``as_of`` (default: today in the
    tenant's zone), the tenant (for a key of all tenants), and the page (``after``, ``limit``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_of: date | None = None
    tenant: str | None = None
    after: PageCursor | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class PayoutsQuery(_PageQuery):
    """``GET /v1/reconciliation/payouts``: payouts arriving ``from`` … ``to`` (inclusive) of one
    ``status``."""

    status: PayoutStatus | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None


class PayoutRow(BaseModel):
    """A payout and its bank deposit (DESIGN.md's payout reconciliation row); the composition's
    signed components sum to ``amount_minor`` (null when no composition is known)."""

    source: str
    payout_id: str
    currency: str
    amount_minor: int
    arrival_date: date
    status: PayoutStatus
    bank_line: str | None
    difference_minor: int | None
    gross_minor: int | None
    refunds_minor: int | None
    fees_minor: int | None
    disputes_minor: int | None
    adjustments_minor: int | None


class PayoutsOut(BaseModel):
    """A page of payouts; pass ``next`` as ``after`` for the next one (null at the end)."""

    payouts: list[PayoutRow]
    next: str | None


class ExceptionsQuery(_PageQuery):
    """``GET /v1/reconciliation/exceptions``: optionally one ``kind``, resolved or not."""

    kind: KindFilter | None = None
    resolved: bool | None = None


class ExceptionRow(BaseModel):
    """Something an analyst acts on (DESIGN.md's exception row)."""

    id: str
    kind: ExceptionKind
    source: str
    reference: str
    amount_minor: int
    currency: str
    difference_minor: int | None
    detail: str
    resolved: bool


class ExceptionsOut(BaseModel):
    """A page of exceptions by id; pass ``next`` as ``after`` for the next one."""

    exceptions: list[ExceptionRow]
    next: str | None


class ClearingQuery(_PageQuery):
    """``GET /v1/reconciliation/clearing``: tie-out days ``from`` … ``to`` (inclusive), of one
    ``processor``."""

    processor: str | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None


class ClearingRow(BaseModel):
    """One clearing account on one business day with activity: the ledger's balance at the end
    of the day, what the processor says is still unpaid, ``difference_minor`` = ledger -
    processor, and how much of it arose that day."""

    processor: str
    clearing_account: str
    currency: str
    business_date: date
    ledger_balance_minor: int
    processor_unpaid_minor: int
    difference_minor: int
    difference_change_minor: int
    status: Literal["tied", "pending", "off"]


class ClearingOut(BaseModel):
    """A page of tie-out days; pass ``next`` as ``after`` for the next one (null at the end)."""

    clearing: list[ClearingRow]
    next: str | None


class OrderQuery(BaseModel):
    """``GET /v1/reconciliation/orders/{id}``: statuses evaluated on ``as_of``."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    tenant: str | None = None


class OrderOut(BaseModel):
    """An order as the shop states it, with what its payments add up to."""

    source: str
    order_id: str
    number: str | None
    status: str
    currency: str
    total_minor: int
    business_date: date
    paid_minor: int


class OrderPayment(BaseModel):
    """A payment naming the order, and the payout that carried it (when known)."""

    source: str
    payment_id: str
    processor: str
    currency: str
    gross_minor: int
    fee_minor: int | None
    business_date: date
    payout_id: str | None
    payout_status: PayoutStatus | None
    payout_arrival_date: date | None
    bank_line: str | None


class OrderDocument(BaseModel):
    """The accounting document that covers the order, and what the sync target confirmed."""

    doc_key: str
    target: str | None
    target_id: str | None
    status: Literal["synced", "voided", "failed", "unsent"]


class OrderChainOut(BaseModel):
    """Order → payments → payouts → bank lines, and the exceptions on the way. ``document``
    is the accounting document covering the order (null when the tenant syncs nowhere)."""

    order: OrderOut
    payments: list[OrderPayment]
    document: OrderDocument | None = None
    exceptions: list[ExceptionRow]


class ResolutionIn(BaseModel):
    """``POST /v1/reconciliation/resolutions``: the exception, why, and whether it is resolved
    (``false`` reopens it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    exception_id: str = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=1000)
    resolved: bool = True


class ResolutionOut(BaseModel):
    """The appended event: its position, and ``duplicate`` for a repeated Idempotency-Key."""

    exception_id: str
    type: str
    status: str
    position: int


@contextlib.asynccontextmanager
async def _reading(request: web.Request) -> AsyncIterator[Connection]:
    """A connection to read reconciliation with; 404 while no worker has built it."""
    not_built = "reconciliation has not been built yet: no worker has run it"
    async with reading(request, not_built) as conn:
        yield conn


def _page(
    request: web.Request,
    page: dict[str, Any],
    row: type[BaseModel],
    out: type[BaseModel],
    sheet: str,
) -> web.StreamResponse:
    """A page (``{<list>: rows, "next"}``) as ``out``, or its rows as the CSV or Excel file of
    ``row``'s fields the client asked for (``hub.spi.exports``)."""
    name = next(f for f in out.model_fields if f != "next")
    items = [row.model_validate(r) for r in page[name]]
    exported = file_response(
        request, [i.model_dump() for i in items], list(row.model_fields), sheet=sheet
    )
    if exported is not None:
        return exported
    body = out.model_validate({name: items, "next": page["next"]})
    return json_response(body.model_dump(mode="json"))


async def list_payouts(request: web.Request) -> web.StreamResponse:
    """The key's tenant's payouts with their deposit, status and composition."""
    query = validate(PayoutsQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    async with _reading(request) as conn:
        page = await ReconciliationReports.payouts(
            conn, tenant, status=query.status, start=query.from_, end=query.to,
            as_of=query.as_of, after=query.after, limit=query.limit,
        )  # fmt: skip
    return _page(request, page, PayoutRow, PayoutsOut, "payouts")


async def list_exceptions(request: web.Request) -> web.StreamResponse:
    """The key's tenant's exceptions (a missing deposit only once its window has closed)."""
    query = validate(ExceptionsQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    async with _reading(request) as conn:
        page = await ReconciliationReports.exceptions(
            conn, tenant, kind=query.kind, resolved=query.resolved, as_of=query.as_of,
            after=query.after, limit=query.limit,
        )  # fmt: skip
    return _page(request, page, ExceptionRow, ExceptionsOut, "exceptions")


async def list_clearing(request: web.Request) -> web.StreamResponse:
    """The key's tenant's clearing-account tie-out, per processor, currency and day."""
    query = validate(ClearingQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    async with _reading(request) as conn:
        rows = await queries.clearing(
            conn, tenant, processor=query.processor, start=query.from_, end=query.to,
            as_of=query.as_of, after=clearing_cursor(query.after), limit=query.limit,
        )  # fmt: skip
    following = clearing_next(rows[-1]) if len(rows) == query.limit else None
    return _page(
        request, {"clearing": rows, "next": following}, ClearingRow, ClearingOut, "clearing"
    )


async def order_chain(request: web.Request) -> web.Response:
    """One order of the key's tenant with its payments, payouts, deposits and exceptions."""
    query = validate(OrderQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    order_id = request.match_info["id"]
    async with _reading(request) as conn:
        chain = await queries.order_chain(conn, tenant, order_id, as_of=query.as_of)
    if chain is None:
        raise NotFound(f"tenant {tenant!r} has no order {order_id!r}")
    return json_response(OrderChainOut.model_validate(chain).model_dump(mode="json"))


async def resolve_exception(request: web.Request) -> web.Response:
    """Append a resolution (or a reopening) of one exception of the key's tenant."""
    body = validate(ResolutionIn, await read_json(request))
    key = current_key(request)
    if not key.may_ingest(key.tenant, RESOLUTION_SOURCE):
        raise Forbidden(
            f"the key ({key.scope}) may not append for source {RESOLUTION_SOURCE!r}: "
            f"use a key with scope ingest:{RESOLUTION_SOURCE}"
        )
    async with _reading(request) as conn:
        if not await queries.exception_exists(conn, key.tenant, body.exception_id):
            raise NotFound(f"tenant {key.tenant!r} has no exception {body.exception_id!r}")
    event_type = RESOLVED if body.resolved else REOPENED
    event = NewEvent(
        tenant=key.tenant,
        source=RESOLUTION_SOURCE,
        external_id=request.headers.get("Idempotency-Key") or uuid.uuid4().hex,
        type=event_type,
        occurred_at=datetime.now(UTC),
        data={"exception_id": body.exception_id, "reason": body.reason},
        meta=request_meta(request),  # with the key id and client address: the audit trail's
    )
    [result] = await append(request, [event])
    out = ResolutionOut(
        exception_id=body.exception_id, type=event_type, status=result.status,
        position=result.position,
    )  # fmt: skip
    return json_response(out.model_dump(mode="json"), status=202)


READ = requires(Access.READ)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "the resolution's external id: the same key again answers the first one's event "
    "(status duplicate); default a new one",
)

ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET", "/v1/reconciliation/payouts", list_payouts, "Payouts and their bank deposits",
        auth=READ, query=PayoutsQuery, response=PayoutsOut, errors=(404,), csv=True,
    ),
    ApiRoute(
        "GET", "/v1/reconciliation/exceptions", list_exceptions, "Reconciliation exceptions",
        auth=READ, query=ExceptionsQuery, response=ExceptionsOut, errors=(404,), csv=True,
    ),
    ApiRoute(
        "GET", "/v1/reconciliation/clearing", list_clearing,
        "Clearing accounts tied out against the processor, per day",
        auth=READ, query=ClearingQuery, response=ClearingOut, errors=(404,), csv=True,
    ),
    ApiRoute(
        "GET", "/v1/reconciliation/orders/{id}", order_chain, "An order's chain to the bank",
        auth=READ, query=OrderQuery, response=OrderChainOut, errors=(404,),
    ),
    ApiRoute(
        "POST", "/v1/reconciliation/resolutions", resolve_exception,
        "Resolve or reopen an exception (an event in the log)",
        auth=requires(Access.INGEST), body=ResolutionIn, response=ResolutionOut, status=202,
        errors=(404,), headers=(IDEMPOTENCY_KEY,),
    ),
)  # fmt: skip
