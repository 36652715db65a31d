"""Pulling Stripe's API: charges, refunds, disputes, payouts and the balance transactions each
payout settles, with a restricted API key (``Authorization: Bearer rk_…``).

Each stream lists its objects in one ``created`` window per pull, ``created[gte]`` = the
stream's cursor, ``created[lt]`` = the pull's start, newest first in pages of 100 with
``starting_after``/``has_more`` (Stripe's list pagination). Every page is committed with the
window and the last id listed, so a pull that dies resumes in the middle of its window. When
the window is done the cursor moves to its end, less a five-minute look-back (objects are
listed again, as duplicates, rather than missed) — but never past an object that is still
changing: a pending charge or refund, an open dispute, a payout not yet paid, failed or
canceled holds its stream's cursor at its ``created``, so the next pull lists it again and
appends its final state. ``expand[]=data.balance_transaction`` on charges and refunds gives the
mapper the settled amount of a payment in another currency; a dispute carries its balance
transactions already. Each final payout's balance transactions are listed with ``payout=`` and
appended before the payout, which lists their ids.

A 429, a 409 (lock timeout), a 5xx, a timeout or a dropped connection is retried with
exponential, jittered backoff (tenacity), and so is any answer carrying
``Stripe-Should-Retry: true``; ``Stripe-Should-Retry: false`` is never retried. Another 4xx (a
bad or revoked key, a missing permission of a restricted key) stops the pull with Stripe's
message (``error.type``/``code``/``message``; Stripe never echoes a whole key).

Events (type, external id), streams ``{source}/{object id}`` as webhooks give them:

- charge: ``stripe.charge.succeeded`` / ``stripe.charge.failed``, ``{ch_…}:{status}``;
- refund: ``stripe.refund.updated``, ``{re_…}:{status}``;
- dispute: ``stripe.charge.dispute.updated`` (open) or ``.closed``, ``{dp_…}:{status}``; each
  balance transaction of it: ``stripe.charge.dispute.funds_withdrawn`` (negative) or
  ``.funds_reinstated`` (positive), ``{dp_…}:funds_withdrawn`` / ``:funds_reinstated``;
- payout: ``stripe.payout.paid`` / ``.failed`` / ``.canceled``, ``{po_…}:{status}``, data
  ``{"data": {"object": payout}, "balance_transactions": [txn ids]}``; one still ``pending`` or
  ``in_transit``: ``stripe.payout.updated``, ``{po_…}:{status}``, the payout alone;
- balance transaction: ``stripe.balance_transaction``, ``{txn_…}`` (the id a hand-pushed one
  uses), data ``{"data": {"object": bt}, "payout": "po_…"}``.

Each event's ``data.data.object`` is the object as the API returned it, like a webhook's.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, time
from typing import Any, ClassVar
from urllib.parse import urlencode

import orjson

from hub.domain.events import NewEvent
from hub.spi.puller import (
    Page,
    PullContext,
    PulledStream,
    Puller,
    Response,
    SourceRejected,
    SourceUnavailable,
    call,
)

LOOKBACK_SECONDS = 300
"""A finished window's cursor is its end less this: late-listed objects are seen again."""
API_VERSION = "2024-06-20"

STREAMS = (
    PulledStream(
        "charges", ("id",), "created", ("stripe.charge.succeeded", "stripe.charge.failed")
    ),
    PulledStream("refunds", ("id",), "created", ("stripe.refund.updated",)),
    PulledStream(
        "disputes",
        ("id",),
        "created",
        (
            "stripe.charge.dispute.updated",
            "stripe.charge.dispute.closed",
            "stripe.charge.dispute.funds_withdrawn",
            "stripe.charge.dispute.funds_reinstated",
        ),
    ),
    PulledStream(
        "payouts",
        ("id",),
        "created",
        (
            "stripe.payout.updated",
            "stripe.payout.paid",
            "stripe.payout.failed",
            "stripe.payout.canceled",
        ),
    ),
    PulledStream(
        "balance_transactions",
        ("id",),
        "payout",
        ("stripe.balance_transaction",),
        parent="payouts",
    ),
)

_PATHS = {
    "charges": "/v1/charges",
    "refunds": "/v1/refunds",
    "disputes": "/v1/disputes",
    "payouts": "/v1/payouts",
}
_EXPAND = {
    "charges": ("data.balance_transaction",),
    "refunds": ("data.balance_transaction",),
}
_DISPUTE_CLOSED = {"won", "lost", "warning_closed", "charge_refunded", "prevented"}
_PAYOUT_FINAL = {"paid", "failed", "canceled"}


class StripePuller(Puller):
    """Charges, refunds, disputes, payouts and their balance transactions (module docstring)."""

    streams: ClassVar[tuple[PulledStream, ...]] = STREAMS
    credentials: ClassVar[tuple[str, ...]] = ("api_key",)
    default_url: ClassVar[str] = "https://api.stripe.com"

    async def pull(self, ctx: PullContext) -> AsyncIterator[Page]:
        now = ctx.now or datetime.now(UTC)
        for stream in ("charges", "refunds", "disputes", "payouts"):
            async for page in self._stream(ctx, stream, int(now.timestamp())):
                yield page

    async def health_check(self, ctx: PullContext) -> str:
        """The key is accepted and the API answers: one balance transaction listed (a read
        any restricted key that pulls may make)."""
        await self._get(ctx, "/v1/balance_transactions", [("limit", "1")])
        return "Stripe accepted the API key"

    async def _stream(self, ctx: PullContext, stream: str, now: int) -> AsyncIterator[Page]:
        window = _window(ctx, stream, now)
        since, until = window["since"], window["until"]
        after: str | None = window.get("after")
        hold: int | None = window.get("hold")
        seen, total = 0, None
        while True:
            params: list[tuple[str, str]] = [
                ("limit", str(ctx.page_size)),
                ("created[gte]", str(since)),
                ("created[lt]", str(until)),
            ]
            params += [("expand[]", item) for item in _EXPAND.get(stream, ())]
            if after is None:
                params.append(("include[]", "total_count"))
            else:
                params.append(("starting_after", after))
            listing = await self._get(ctx, _PATHS[stream], params)
            objects = _objects(listing)
            if isinstance(listing.get("total_count"), int):
                total = listing["total_count"]
            events: list[NewEvent] = []
            for obj in objects:
                made, pending = await self._events(ctx, stream, obj)
                events += made
                if pending:
                    created = int(obj["created"])
                    hold = created if hold is None else min(hold, created)
            seen += len(objects)
            more = bool(listing.get("has_more")) and bool(objects)
            if more:
                after = str(objects[-1]["id"])
                cursor = {"since": since, "until": until, "after": after, "hold": hold}
            else:
                done = max(since, until - LOOKBACK_SECONDS)
                cursor = {"since": done if hold is None else min(hold, done)}
            yield Page(stream, events, cursor, seen=seen, total=total)
            if not more:
                return

    async def _events(
        self, ctx: PullContext, stream: str, obj: dict[str, Any]
    ) -> tuple[list[NewEvent], bool]:
        """The events ``obj`` of ``stream`` is appended as, and whether it is still changing
        (and so holds the stream's cursor)."""
        status = str(obj.get("status") or "")
        if stream == "charges":
            if status not in ("succeeded", "failed"):
                return [], True
            return [_event(ctx, f"stripe.charge.{status}", f"{obj['id']}:{status}", obj)], False
        if stream == "refunds":
            final = status in ("succeeded", "failed", "canceled")
            return [_event(ctx, "stripe.refund.updated", f"{obj['id']}:{status}", obj)], not final
        if stream == "disputes":
            closed = status in _DISPUTE_CLOSED
            kind = "closed" if closed else "updated"
            made = [_event(ctx, f"stripe.charge.dispute.{kind}", f"{obj['id']}:{status}", obj)]
            for bt in obj.get("balance_transactions") or []:
                amount = bt.get("amount") if isinstance(bt, dict) else None
                if isinstance(amount, int) and amount != 0:
                    what = "funds_withdrawn" if amount < 0 else "funds_reinstated"
                    made.append(
                        _event(ctx, f"stripe.charge.dispute.{what}", f"{obj['id']}:{what}", obj)
                    )
            return made, not closed
        # payouts: one still on its way is stated (reconciliation shows it pending) and holds
        # the cursor; a final one comes with the balance transactions it settled
        if status not in _PAYOUT_FINAL:
            return [_event(ctx, "stripe.payout.updated", f"{obj['id']}:{status}", obj)], True
        settled = await self._settled(ctx, str(obj["id"])) if status != "canceled" else []
        made = [
            _event(
                ctx,
                "stripe.balance_transaction",
                str(bt["id"]),
                bt,
                extra={"payout": obj["id"]},
            )
            for bt in settled
        ]
        made.append(
            _event(
                ctx,
                f"stripe.payout.{status}",
                f"{obj['id']}:{status}",
                obj,
                extra={"balance_transactions": [str(bt["id"]) for bt in settled]},
            )
        )
        return made, False

    async def _settled(self, ctx: PullContext, payout: str) -> list[dict[str, Any]]:
        """Every balance transaction ``payout`` settles (``GET /v1/balance_transactions``
        with ``payout=``), all pages."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = [("limit", str(ctx.page_size)), ("payout", payout)]
            if after is not None:
                params.append(("starting_after", after))
            listing = await self._get(ctx, "/v1/balance_transactions", params)
            objects = _objects(listing)
            found += objects
            if not (listing.get("has_more") and objects):
                return found
            after = str(objects[-1]["id"])

    async def _get(
        self, ctx: PullContext, path: str, params: list[tuple[str, str]]
    ) -> dict[str, Any]:
        url = f"{self.base_url(ctx)}{path}?{urlencode(params)}"
        headers = {
            "Authorization": f"Bearer {ctx.credential('api_key')}",
            "Stripe-Version": API_VERSION,
            "Accept": "application/json",
        }

        async def send() -> Response:
            return await ctx.transport.request("GET", url, headers, None)

        response = await call(ctx, send, lambda r: _judge(path, r))
        try:
            value = orjson.loads(response.body)
        except orjson.JSONDecodeError as exc:
            raise SourceUnavailable(f"Stripe GET {path}: the answer is not JSON") from exc
        if not isinstance(value, dict):
            raise SourceUnavailable(f"Stripe GET {path}: the answer is not a JSON object")
        return value


def _judge(path: str, response: Response) -> Response:
    """``response`` if it is a 200, else the error to retry (``SourceUnavailable``) or to stop
    at (``SourceRejected``), by Stripe's ``Stripe-Should-Retry`` first, then its status."""
    if response.status == 200:
        return response
    where = f"Stripe GET {path}: HTTP {response.status}{_error(response.body)}"
    should = (response.header("Stripe-Should-Retry") or "").strip().lower()
    if should == "false":
        raise SourceRejected(where)
    if should == "true" or response.status in (409, 429) or response.status >= 500:
        retry = response.header("Retry-After") or ""
        try:
            wait: float | None = float(retry)
        except ValueError:
            wait = None
        if wait is not None and not (math.isfinite(wait) and wait >= 0):
            wait = None
        raise SourceUnavailable(where, retry_after=wait)
    raise SourceRejected(where)


def _error(body: bytes) -> str:
    """Stripe's ``{"error": {"type", "code", "message"}}`` as ``: type/code: message``."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    if not isinstance(error, dict):
        return ""
    kind = "/".join(str(error[k]) for k in ("type", "code") if error.get(k))
    message = str(error.get("message") or "")[:300]
    return f": {kind}: {message}" if kind else f": {message}" if message else ""


def _objects(listing: Mapping[str, Any]) -> list[dict[str, Any]]:
    data = listing.get("data")
    if listing.get("object") != "list" or not isinstance(data, list):
        raise SourceUnavailable("Stripe answered something that is not a list object")
    return [obj for obj in data if isinstance(obj, dict) and isinstance(obj.get("id"), str)]


def _window(ctx: PullContext, stream: str, now: int) -> dict[str, Any]:
    """Where ``stream`` lists this pull: its unfinished window, else ``[cursor, now)``."""
    state = ctx.state.get(stream) or {}
    if ctx.restart or not state:
        since = 0
        if ctx.since is not None:
            zone = ctx.zone or UTC
            since = int(datetime.combine(ctx.since, time(), zone).timestamp())
        return {"since": since, "until": now}
    if "until" in state:
        return dict(state)
    return {"since": int(state.get("since", 0)), "until": now}


def _event(
    ctx: PullContext,
    event_type: str,
    external_id: str,
    obj: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
) -> NewEvent:
    return NewEvent(
        tenant=ctx.tenant,
        source=ctx.source,
        external_id=external_id,
        type=event_type,
        occurred_at=datetime.fromtimestamp(int(obj["created"]), UTC),
        data={"data": {"object": obj}, **(extra or {})},
        stream=f"{ctx.source}/{obj['id']}",
        meta={"pulled": True},
    )
