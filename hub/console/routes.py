"""The console's pages and form posts under ``/console/``, and ``mount`` (``hub.api.app``).

Every page needs a signed-in session (else a redirect to the sign-in form); a page or a post
that needs ``read`` or ``operate`` access answers a 403 page to a key without it, whatever the
page showed. Every post is a form carrying the session's CSRF token (``hub.console.csrf``).
Errors are pages with the status the API would answer (404, 403, 422, 429, 503), never a
traceback. The routes are declared ``session`` (``hub.api.routing.SESSION``): the API's key
check lets them through, and the console does its own authentication (a session rather than a
bearer key); only the sign-in form and the stylesheet are open.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from hub.api import audit
from hub.api.auth import client_of
from hub.api.context import REQUEST_ID, ROUTE_AUTH, context
from hub.api.problems import RateLimited
from hub.api.reads import read_tenant
from hub.api.routing import SESSION, text_problem
from hub.console import chart, csrf, session
from hub.console.format import raw_text
from hub.console.pages import error_page, link, render
from hub.domain.audit import MOVABLE_PARKED, AuditAction
from hub.domain.keys import ALL_TENANTS, Access, ApiKey
from hub.domain.projections import ALL_PARKED, OPEN_PARKED
from hub.errors import (
    ConfigError,
    Forbidden,
    InvalidInput,
    LedgerhubError,
    NotFound,
    RejectedError,
    RetriableError,
)
from hub.spi.console import ledger_inspector, reconciliation_inspector
from hub.spi.http import reading
from hub.store.health import HealthStore
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore
from hub.store.runs import RunLog
from hub.usecases.signatures import check_delivery

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]
PAGE_SIZE = 50
"""Rows per page of a long list."""
PAYOUT_STATUSES = ("matched", "pending", "missing_deposit", "amount_mismatch")
_TITLES = {401: "Sign in again", 403: "Not allowed", 404: "Not found", 422: "Not understood"}


def page(access: Access | None = None, *, post: bool = False) -> Callable[[Page], Page]:
    """A console handler: signed in (else to the sign-in form, or 403 for a post), holding
    ``access`` (else 403), and for a ``post`` carrying the CSRF token (else 403). Errors are
    answered as pages."""

    def wrap(handler: Page) -> Page:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                signed_in = await session.current(request)
                if signed_in is None:
                    if post:
                        raise Forbidden("sign in first: this form needs a console session")
                    target = link("/console/sign-in", next=request.path_qs)
                    return _see_other(target)
                if post:
                    form = await request.post()
                    csrf.check(request, signed_in.csrf, form.get(csrf.FIELD))
                if access is not None and not signed_in.key.grants(access):
                    raise Forbidden(
                        f"the key's scopes ({signed_in.key.scope}) do not grant {access} access"
                    )
                _check_text(request)
                return await handler(request)
            except LedgerhubError as exc:
                return _error(request, exc)

        return guarded

    return wrap


def _see_other(location: str, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def _notice_mac(request: web.Request, notice: str) -> str:
    secret = request[session.SESSION].csrf.encode()
    return hmac.new(secret, notice.encode(), hashlib.sha256).hexdigest()[:32]


def _with_notice(request: web.Request, path: str, notice: str, **params: str | None) -> str:
    """``path`` showing ``notice`` once it is reached: sealed with the session's secret, so a
    link from elsewhere cannot make the console say something."""
    return link(path, **params, notice=notice, mac=_notice_mac(request, notice))


def _notice(request: web.Request) -> str:
    """The notice the page was reached with by one of the console's own redirects, else none."""
    notice = request.query.get("notice", "")
    sealed = request.query.get("mac", "")
    ok = notice and hmac.compare_digest(sealed.encode(), _notice_mac(request, notice).encode())
    return notice if ok else ""


def _check_text(request: web.Request) -> None:
    for name, value in [*request.match_info.items(), *request.query.items()]:
        problem = text_problem(value)
        if problem is not None:
            raise InvalidInput(f"{name!r}: {problem}")


def _error(request: web.Request, exc: LedgerhubError) -> web.Response:
    if isinstance(exc, RejectedError):
        response = error_page(request, exc.status, _TITLES.get(exc.status, "Refused"), exc.detail)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    if isinstance(exc, RetriableError):
        return error_page(request, 503, "Unavailable", f"try again shortly: {exc}")
    if isinstance(exc, ConfigError):
        return error_page(request, 500, "Not configured", str(exc))
    return error_page(request, 500, "Failed", str(exc))


def _tenant(request: web.Request, form: MultiDictProxy[Any] | None = None) -> str:
    asked = (form or request.query).get("tenant")
    return read_tenant(request, asked if isinstance(asked, str) and asked else None)


def _key(request: web.Request) -> ApiKey:
    return request[session.SESSION].key


def _day(request: web.Request, name: str) -> date | None:
    text = request.query.get(name, "")
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name!r} must be a date written YYYY-MM-DD, not {text[:40]!r}"
        ) from None


def _number(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) < 2**63):
        raise NotFound(f"no {what} {text[:40]!r}")
    return int(text)


def _store(request: web.Request) -> ProjectionStore:
    return ProjectionStore.over(context(request).store)


def _not_built(what: str) -> str:
    return f"{what} has not been built yet: no worker has run it"


# ---------------------------------------------------------------------- signing in and out


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    """The sign-in form (its CSRF token also in a short-lived cookie)."""
    return _sign_in_page(request, "", 200)


def _sign_in_page(request: web.Request, error: str, status: int) -> web.Response:
    token = csrf.new_token()
    next_path = _safe_next(request.query.get("next") or "")
    response = render(
        request, "sign_in.html", status=status, error=error, csrf=token, tenant=None,
        next_path=next_path,
    )  # fmt: skip
    response.set_cookie(
        csrf.PRE_COOKIE, token, path=session.PATH, httponly=True, samesite="Strict",
        secure=request.secure, max_age=3600,
    )  # fmt: skip
    return response


def _safe_next(path: str) -> str:
    """Where to go after signing in: a console path of this server, else the overview."""
    ok = path.startswith("/console/") and "//" not in path and "\\" not in path
    return path if ok and text_problem(path) is None else "/console/"


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Check the typed key and open a session (303 to where the user was going)."""
    form = await request.post()
    try:
        csrf.check(request, request.cookies.get(csrf.PRE_COOKIE), form.get(csrf.FIELD))
    except Forbidden as exc:
        return error_page(request, 403, "Not allowed", exc.detail)
    typed = form.get("key")
    try:
        token, _ = await session.sign_in(request, typed if isinstance(typed, str) else "")
    except RejectedError as exc:
        response = _sign_in_page(request, exc.detail, exc.status)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    except LedgerhubError as exc:
        return _error(request, exc)
    next_path = form.get("next")
    response = _see_other(_safe_next(next_path if isinstance(next_path, str) else ""))
    session.set_cookie(request, response, token)
    response.del_cookie(csrf.PRE_COOKIE, path=session.PATH)
    return response


@page(post=True)
async def sign_out(request: web.Request) -> web.StreamResponse:
    """End the session and forget its cookie."""
    await session.sign_out(request)
    response = _see_other("/console/sign-in")
    session.drop_cookie(response)
    return response


# ---------------------------------------------------------------------- overview


@page()
async def overview(request: web.Request) -> web.StreamResponse:
    """Projections (position, lag, parked), connection health and recent runs (operate keys);
    where to go next (read keys)."""
    key = _key(request)
    tenant = _tenant(request)
    projections: list[Any] = []
    runs: list[Any] = []
    health: list[Any] = []
    if key.grants(Access.OPERATE):
        own = None if key.tenant == ALL_TENANTS else key.tenant
        projections = await _store(request).status()
        health = await HealthStore.over(context(request).store).all(own)
        runs = await RunLog.over(context(request).store).recent(limit=15, tenant=own)
    return render(
        request, "overview.html", tenant=tenant, projections=projections, runs=runs,
        health=health, active="overview",
    )  # fmt: skip


# ---------------------------------------------------------------------- reconciliation


@page(Access.READ)
async def payouts(request: web.Request) -> web.StreamResponse:
    """Payouts by status with their bank line and difference, a page at a time."""
    tenant = _tenant(request)
    status = request.query.get("status") or None
    if status is not None and status not in PAYOUT_STATUSES:
        raise InvalidInput(f"'status' must be one of {', '.join(PAYOUT_STATUSES)}")
    as_of = _day(request, "as_of")
    after = request.query.get("after") or None
    inspector = reconciliation_inspector()
    async with reading(request, _not_built("reconciliation")) as conn:
        found = await inspector.payouts(
            conn, tenant, status=status, as_of=as_of, after=after, limit=PAGE_SIZE
        )
        summary = await inspector.payout_statuses(conn, tenant, as_of=as_of)
    return render(
        request, "payouts.html", tenant=tenant, rows=found["payouts"], next=found["next"],
        chosen=status, as_of=as_of, statuses=PAYOUT_STATUSES, summary=summary,
        active="payouts",
    )  # fmt: skip


def _resolved_filter(text: str) -> bool | None:
    if text in ("", "any"):
        return None
    if text in ("open", "resolved"):
        return text == "resolved"
    raise InvalidInput("'resolved' must be any, open or resolved")


@page(Access.READ)
async def exceptions(request: web.Request) -> web.StreamResponse:
    """Exceptions with filters, each open one with a resolve form (for a key that may)."""
    tenant = _tenant(request)
    kind = request.query.get("kind") or None
    state = request.query.get("resolved", "open")
    as_of = _day(request, "as_of")
    after = request.query.get("after") or None
    async with reading(request, _not_built("reconciliation")) as conn:
        found = await reconciliation_inspector().exceptions(
            conn, tenant, kind=kind, resolved=_resolved_filter(state), as_of=as_of, after=after,
            limit=PAGE_SIZE,
        )  # fmt: skip
    return render(
        request, "exceptions.html", tenant=tenant, rows=found["exceptions"], next=found["next"],
        kind=kind, state=state, as_of=as_of, may_resolve=_may_resolve(request, tenant),
        notice=_notice(request), active="exceptions",
    )  # fmt: skip


def _may_resolve(request: web.Request, tenant: str) -> bool:
    """An operate key of the tenant (or of all tenants), or a key that may append the
    resolutions' source through the API."""
    key = _key(request)
    source = reconciliation_inspector().resolution_source()
    return (key.grants(Access.OPERATE) and key.may_access_tenant(tenant)) or key.may_ingest(
        tenant, source
    )


@page(post=True)
async def resolve(request: web.Request) -> web.StreamResponse:
    """Append the event resolving (or reopening) an exception; back to the list (303)."""
    form = await request.post()
    tenant = _tenant(request, form)
    if not _may_resolve(request, tenant):
        raise Forbidden(f"the key's scopes ({_key(request).scope}) may not resolve exceptions")
    exception_id = _field(form, "exception_id", 1000)
    reason = _field(form, "reason", 1000)
    resolved = form.get("resolved", "true") != "false"
    inspector = reconciliation_inspector()
    async with reading(request, _not_built("reconciliation")) as conn:
        if not await inspector.exception_exists(conn, tenant, exception_id):
            raise NotFound(f"tenant {tenant!r} has no exception {exception_id!r}")
    meta = {
        "request_id": request.get(REQUEST_ID),
        "api_key": _key(request).prefix,
        "key_id": str(_key(request).id),
        "client": client_of(request),
    }
    event = inspector.resolution(
        tenant, exception_id, reason, resolved=resolved, external_id=uuid.uuid4().hex,
        meta={**meta, "via": "console"},
    )  # fmt: skip
    [result] = await context(request).store.append([event])
    verb = "resolved" if resolved else "reopened"
    notice = (
        f"Exception {exception_id} {verb} (event {result.position}); the list shows it once "
        "the worker has applied it."
    )
    return _see_other(
        _with_notice(request, "/console/exceptions", notice, tenant=_tenant_param(request, tenant))
    )


def _tenant_param(request: web.Request, tenant: str) -> str | None:
    return tenant if _key(request).tenant == ALL_TENANTS else None


def _field(form: MultiDictProxy[Any], name: str, longest: int) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name!r} is required", errors=[{"field": name, "message": "required"}])
    value = value.strip()
    problem = text_problem(value) or (
        f"at most {longest} characters" if len(value) > longest else None
    )
    if problem is not None:
        raise InvalidInput(f"{name!r}: {problem}", errors=[{"field": name, "message": problem}])
    return value


@page(Access.READ)
async def order_lookup(request: web.Request) -> web.StreamResponse:
    """The order form's answer: to the order's chain."""
    order_id = (request.query.get("id") or "").strip()
    if not order_id:
        raise InvalidInput("type an order id")
    tenant = request.query.get("tenant") or None
    return _see_other(link(f"/console/orders/{_quote(order_id)}", tenant=tenant))


def _quote(text: str) -> str:
    return quote(text, safe="")


@page(Access.READ)
async def order(request: web.Request) -> web.StreamResponse:
    """One order's chain: order → payments → payout → bank line → document and its sync."""
    tenant = _tenant(request)
    order_id = request.match_info["id"]
    as_of = _day(request, "as_of")
    async with reading(request, _not_built("reconciliation")) as conn:
        chain = await reconciliation_inspector().order_chain(conn, tenant, order_id, as_of=as_of)
    if chain is None:
        raise NotFound(f"tenant {tenant!r} has no order {order_id!r}")
    return render(request, "order.html", tenant=tenant, chain=chain, active="payouts")


@page(Access.READ)
async def payouts_chart(request: web.Request) -> web.StreamResponse:
    """Payouts due against bank deposits received, per day (inline SVG)."""
    tenant = _tenant(request)
    start, end = _day(request, "from"), _day(request, "to")
    async with reading(request, _not_built("reconciliation")) as conn:
        rows = await reconciliation_inspector().payouts_and_deposits(
            conn, tenant, start=start, end=end
        )
    found = chart.currencies(rows)
    wanted = request.query.get("currency") or context(request).config.tenant(tenant).currency
    currency = wanted if wanted in found else (found[0] if found else wanted)
    return render(
        request, "chart.html", tenant=tenant, chart=chart.draw(rows, currency), rows=rows,
        currency=currency, currencies=found, start=start, end=end, active="chart",
    )  # fmt: skip


# ---------------------------------------------------------------------- ledger


@page(Access.READ)
async def trial_balance(request: web.Request) -> web.StreamResponse:
    """The trial balance as of a date; each line leads to the account's entries."""
    tenant = _tenant(request)
    as_of = _day(request, "as_of")
    async with reading(request, _not_built("the ledger")) as conn:
        found = await ledger_inspector().trial_balance(conn, tenant, as_of)
    return render(
        request, "ledger.html", tenant=tenant, balance=found, as_of=as_of, active="ledger"
    )


@page(Access.READ)
async def account(request: web.Request) -> web.StreamResponse:
    """An account's postings, a page at a time; each leads to its entry."""
    tenant = _tenant(request)
    code = request.match_info["code"]
    after = request.query.get("after") or None
    async with reading(request, _not_built("the ledger")) as conn:
        found = await ledger_inspector().account_page(
            conn, tenant, code, after=after, limit=PAGE_SIZE
        )
    if found is None:
        raise NotFound(f"tenant {tenant!r} has no account {code!r}")
    return render(request, "account.html", tenant=tenant, page=found, active="ledger")


@page(Access.READ)
async def entry(request: web.Request) -> web.StreamResponse:
    """A journal entry: its postings and the events it came from."""
    tenant = _tenant(request)
    key = request.match_info["key"]
    async with reading(request, _not_built("the ledger")) as conn:
        found = await ledger_inspector().journal_entry(conn, tenant, key)
    if found is None:
        raise NotFound(f"tenant {tenant!r} has no journal entry {key!r}")
    events = [await _store(request).read_one(p) for p in found["positions"]]
    return render(request, "entry.html", tenant=tenant, entry=found, events=events, active="ledger")


@page()
async def event(request: web.Request) -> web.StreamResponse:
    """A stored event: its data, its raw delivery as received, and whether the delivery's
    signature verifies now against the connection's secret (for a read key, from the ledger;
    for an operate key, from a parked event)."""
    position = _number(request.match_info["position"], "event")
    found = await _store(request).read_one(position)
    if not _key(request).may_access_tenant(found.tenant):
        raise NotFound(f"no event at position {position}")
    delivered = found.raw is not None or "webhook" in found.meta
    outcome = check_delivery(found, context(request).config) if delivered else None
    webhook = found.meta.get("webhook")
    headers = webhook.get("headers") if isinstance(webhook, dict) else None
    return render(
        request, "event.html", tenant=found.tenant, event=found, delivered=delivered,
        outcome=outcome, raw=raw_text(found.raw),
        headers=headers if isinstance(headers, dict) else {},
        meta={k: v for k, v in found.meta.items() if k != "webhook"}, active="ledger",
    )  # fmt: skip


# ---------------------------------------------------------------------- parked events


@page(Access.OPERATE)
async def parked(request: web.Request) -> web.StreamResponse:
    """Parked events (open ones, or all), oldest first, each with retry and skip."""
    key = _key(request)
    state = request.query.get("status", "open")
    if state not in ("open", "all"):
        raise InvalidInput("'status' must be open or all")
    after = _number(request.query.get("after") or "0", "page")
    found = await Parked(_store(request)).find(
        statuses=OPEN_PARKED if state == "open" else ALL_PARKED,
        tenant=None if key.tenant == ALL_TENANTS else key.tenant,
        after_id=after,
        limit=PAGE_SIZE,
    )
    following = found[-1].id if len(found) == PAGE_SIZE else None
    return render(
        request, "parked.html", tenant=_tenant(request), rows=found, next=following,
        state=state, notice=_notice(request), active="parked",
    )  # fmt: skip


async def _parked_of_key(request: web.Request, action: AuditAction) -> tuple[Parked, int]:
    """The parked event the path names, if the session's key may act on it; the action is
    audited (as through the API) before it is done, unless the store will refuse it."""
    store = _store(request)
    parked_id = _number(request.match_info["id"], "parked event")
    found = await Parked(store).get(parked_id)
    tenant = (await store.read_one(found.position)).tenant
    if not _key(request).may_access_tenant(tenant):
        raise NotFound(f"no parked event {parked_id}")
    if found.status in MOVABLE_PARKED:
        subject = {"parked_id": parked_id, "projection": found.projection,
                   "position": found.position, "via": "console"}  # fmt: skip
        await audit.record(request, action, subject, tenant=tenant, key=_key(request))
    return Parked(store), parked_id


@page(Access.OPERATE, post=True)
async def retry_parked(request: web.Request) -> web.StreamResponse:
    """Ask the projection's worker to apply a parked event again."""
    store, parked_id = await _parked_of_key(request, AuditAction.PARKED_RETRY)
    await store.request_retry(parked_id)
    notice = f"Parked event {parked_id}: retry requested; the worker applies it again shortly."
    return _see_other(_with_notice(request, "/console/parked", notice))


@page(Access.OPERATE, post=True)
async def skip_parked(request: web.Request) -> web.StreamResponse:
    """Give up on a parked event."""
    store, parked_id = await _parked_of_key(request, AuditAction.PARKED_SKIP)
    await store.skip(parked_id)
    return _see_other(
        _with_notice(request, "/console/parked", f"Parked event {parked_id} skipped.")
    )


# ---------------------------------------------------------------------- static


async def stylesheet(request: web.Request) -> web.StreamResponse:
    """The console's one stylesheet."""
    text = resources.files("hub.console").joinpath("static/console.css").read_text("utf-8")
    response = web.Response(text=text, content_type="text/css", charset="utf-8")
    response.headers["Cache-Control"] = "max-age=3600"
    return response


async def to_console(request: web.Request) -> web.StreamResponse:
    """``/console`` → ``/console/``."""
    return _see_other("/console/", 308)


ROUTES: tuple[tuple[str, str, Page], ...] = (
    ("GET", "/console", to_console),
    ("GET", "/console/", overview),
    ("GET", "/console/sign-in", sign_in_form),
    ("POST", "/console/sign-in", sign_in),
    ("POST", "/console/sign-out", sign_out),
    ("GET", "/console/reconciliation", payouts),
    ("GET", "/console/exceptions", exceptions),
    ("POST", "/console/exceptions/resolve", resolve),
    ("GET", "/console/orders", order_lookup),
    ("GET", "/console/orders/{id}", order),
    ("GET", "/console/chart", payouts_chart),
    ("GET", "/console/ledger", trial_balance),
    ("GET", "/console/ledger/accounts/{code}", account),
    ("GET", "/console/ledger/entries/{key}", entry),
    ("GET", "/console/events/{position}", event),
    ("GET", "/console/parked", parked),
    ("POST", "/console/parked/{id}/retry", retry_parked),
    ("POST", "/console/parked/{id}/skip", skip_parked),
    ("GET", "/console/static/console.css", stylesheet),
)
"""Method, path and handler of every console route."""


def mount(app: web.Application) -> None:
    """Add the console's routes to ``app`` (after ``build_app`` declared the API's), declared
    ``session``: the API's key check lets them through to their handlers, which check the
    console session themselves."""
    auth = app[ROUTE_AUTH]
    for method, path, handler in ROUTES:
        auth[app.router.add_route(method, path, handler)] = SESSION
