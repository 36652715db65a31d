"""The ledger's HTTP routes (keys with ``read``), mounted by the API (``Ledger.routes``): the
journal, the trial balance, an account's entries, suggestions for bank lines in suspense, and
the events the ledger could not book.

The tenant is the key's; a key issued for every tenant names one with ``?tenant=`` (default:
``default``). JSON, or a file: CSV with ``Accept: text/csv``, Excel with ``Accept:
application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`` (``hub.spi.exports``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import InvalidInput, NotFound
from hub.spi.exports import file_response
from hub.spi.http import (
    Access,
    ApiRoute,
    Connection,
    PageCursor,
    json_response,
    read_tenant,
    reading,
    requires,
    validate,
)
from hub.spi.reports import JOURNAL_FIELDS, journal_rows
from projections.ledger import queries
from projections.ledger.reports import JournalReports

READ = requires(Access.READ)


class TrialBalanceQuery(BaseModel):
    """``GET /v1/ledger/trial-balance`` query: entries dated on or before ``as_of``."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    tenant: str | None = None


class TrialBalanceLine(BaseModel):
    """One account in one currency; ``balance_minor`` = debits - credits."""

    code: str
    name: str
    role: str | None
    currency: str
    debit_minor: int
    credit_minor: int
    balance_minor: int


class TrialBalanceOut(BaseModel):
    """The trial balance; ``balanced`` when debits equal credits in every currency."""

    as_of: date | None
    lines: list[TrialBalanceLine]
    balanced: bool


class EntriesQuery(BaseModel):
    """``GET /v1/ledger/accounts/{code}/entries`` query (``after``: the previous page's
    ``next``)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = None
    after: PageCursor | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class AccountPosting(BaseModel):
    """A posting to the account, with its entry and the event positions it came from."""

    entry_key: str
    business_date: date
    kind: str
    description: str
    source: str
    positions: list[int]
    currency: str
    debit_minor: int
    credit_minor: int


class EntriesOut(BaseModel):
    """A page of postings; pass ``next`` as ``after`` for the next one (null at the end)."""

    code: str
    entries: list[AccountPosting]
    next: str | None


class JournalQuery(BaseModel):
    """``GET /v1/ledger/journal`` query: entries dated ``from`` … ``to`` (inclusive), a page
    (``after``: the previous page's ``next``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tenant: str | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    after: PageCursor | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class JournalPosting(BaseModel):
    """One posting of an entry: an account debited or credited in a currency."""

    account: str
    currency: str
    debit_minor: int
    credit_minor: int


class JournalEntry(BaseModel):
    """A journal entry as the ledger keeps it, with the event positions it came from; its
    postings balance per currency."""

    entry_key: str
    business_date: date
    kind: str
    description: str
    payee: str | None
    source: str
    positions: list[int]
    postings: list[JournalPosting]


class JournalOut(BaseModel):
    """A page of entries; pass ``next`` as ``after`` for the next one (null at the end)."""

    entries: list[JournalEntry]
    next: str | None


class TenantQuery(BaseModel):
    """The tenant to read (a key for every tenant must name one; default ``default``)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = None


class Suggestion(BaseModel):
    """A bank line in suspense and the account most used before for its payee."""

    entry_key: str
    business_date: date
    payee: str | None
    currency: str
    amount_minor: int
    suggested_account: str
    used_times: int


class SuggestionsOut(BaseModel):
    """Suggestions only: nothing is recategorized until a rule in the config says so."""

    suggestions: list[Suggestion]


class UnmappedEvent(BaseModel):
    """An event the ledger keeps but could not book, and why."""

    position: int
    source: str
    type: str
    reason: str


class UnmappedOut(BaseModel):
    """``GET /v1/ledger/unmapped``: ``count`` and the events."""

    count: int
    events: list[UnmappedEvent]


def _cursor(text: str | None) -> queries.Cursor | None:
    """``YYYY-MM-DD|n|entry key`` (a page's ``next``) as a cursor (none when empty); 422 when
    malformed."""
    if not text:
        return None
    day, _, rest = text.partition("|")
    number, _, key = rest.partition("|")
    try:
        return date.fromisoformat(day), key, int(number)
    except ValueError as exc:
        raise InvalidInput(
            f"after {text!r} is not a page cursor",
            errors=[{"field": "after", "message": "use the previous page's next"}],
        ) from exc


@contextlib.asynccontextmanager
async def _books(request: web.Request) -> AsyncIterator[Connection]:
    """A connection to read the ledger with; 404 while no worker has created its tables."""
    async with reading(request, "the ledger has not been built yet: no worker has run it") as conn:
        yield conn


async def trial_balance(request: web.Request) -> web.StreamResponse:
    """The trial balance of the key's tenant as of a date."""
    query = validate(TrialBalanceQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    async with _books(request) as conn:
        found = await queries.trial_balance(conn, tenant, query.as_of)
    body = TrialBalanceOut.model_validate(found)
    exported = file_response(
        request,
        [line.model_dump() for line in body.lines],
        list(TrialBalanceLine.model_fields),
        sheet="trial-balance",
    )
    return exported or json_response(body.model_dump(mode="json"))


async def account_entries(request: web.Request) -> web.StreamResponse:
    """The postings to one account of the key's tenant, oldest first."""
    query = validate(EntriesQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    code = request.match_info["code"]
    async with _books(request) as conn:
        if not await queries.account_exists(conn, tenant, code):
            raise NotFound(f"tenant {tenant!r} has no account {code!r}")
        rows = await queries.account_entries(
            conn, tenant, code, limit=query.limit, after=_cursor(query.after)
        )
    last = rows[-1]["cursor"] if len(rows) == query.limit else None
    page = EntriesOut(
        code=code,
        entries=[AccountPosting.model_validate(row) for row in rows],
        next=None if last is None else f"{last[0].isoformat()}|{last[2]}|{last[1]}",
    )
    exported = file_response(
        request,
        [e.model_dump() for e in page.entries],
        list(AccountPosting.model_fields),
        sheet=f"account-{code}",
    )
    return exported or json_response(page.model_dump(mode="json"))


async def journal(request: web.Request) -> web.StreamResponse:
    """The journal of the key's tenant, entries dated ``from`` … ``to`` with their postings,
    by date and key (CSV and Excel: one row a posting)."""
    query = validate(JournalQuery, dict(request.query))
    tenant = read_tenant(request, query.tenant)
    async with _books(request) as conn:
        found = await JournalReports.journal(
            conn, tenant, start=query.from_, end=query.to, after=query.after, limit=query.limit
        )
    page = JournalOut.model_validate(found)
    exported = file_response(
        request,
        journal_rows([e.model_dump() for e in page.entries]),
        JOURNAL_FIELDS,
        sheet="journal",
    )
    return exported or json_response(page.model_dump(mode="json"))


async def suggestions(request: web.Request) -> web.Response:
    """Bank lines in suspense with the account history suggests for their payee."""
    tenant = read_tenant(request, validate(TenantQuery, dict(request.query)).tenant)
    async with _books(request) as conn:
        rows = await queries.suggestions(conn, tenant)
    return json_response(
        SuggestionsOut.model_validate({"suggestions": rows}).model_dump(mode="json")
    )


async def unmapped(request: web.Request) -> web.Response:
    """Events the ledger kept but could not book (no mapper, or not mappable), with reasons."""
    tenant = read_tenant(request, validate(TenantQuery, dict(request.query)).tenant)
    async with _books(request) as conn:
        rows = await queries.unmapped(conn, tenant)
    body = UnmappedOut.model_validate({"count": len(rows), "events": rows})
    return json_response(body.model_dump(mode="json"))


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET", "/v1/ledger/trial-balance", trial_balance, "The trial balance as of a date",
        auth=READ, query=TrialBalanceQuery, response=TrialBalanceOut, errors=(404,), csv=True,
    ),
    ApiRoute(
        "GET", "/v1/ledger/accounts/{code}/entries", account_entries, "An account's entries",
        auth=READ, query=EntriesQuery, response=EntriesOut, errors=(404,), csv=True,
    ),
    ApiRoute(
        "GET", "/v1/ledger/journal", journal, "The journal: entries and their postings",
        auth=READ, query=JournalQuery, response=JournalOut, errors=(404,), csv=True,
    ),
    ApiRoute(
        "GET", "/v1/ledger/suggestions", suggestions, "Suggested accounts for suspense lines",
        auth=READ, query=TenantQuery, response=SuggestionsOut, errors=(404,),
    ),
    ApiRoute(
        "GET", "/v1/ledger/unmapped", unmapped, "Events the ledger could not book",
        auth=READ, query=TenantQuery, response=UnmappedOut, errors=(404,),
    ),
)  # fmt: skip
