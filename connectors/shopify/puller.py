"""Pulling a Shopify store's REST Admin API (version 2024-10): orders updated since the cursor
(with their refunds), Shopify Payments payouts and the balance transactions each one settled.

Why REST, though Shopify calls it legacy for new public apps since 2024-10: this connector's
webhooks, its mapper and its samples all speak the REST resources (Shopify delivers webhooks in
the REST shape whichever API an app uses), so a pulled order, refund, payout or balance
transaction is the same object a webhook or a hand push carries, mapped by the same code. The
GraphQL Admin API would mean translating every object into that shape first; a private or
custom app's token reads the REST endpoints as well. (A move to GraphQL would change only this
module: its cost-based throttle is the one other thing to honour.)

Authentication: ``X-Shopify-Access-Token`` (the connection's ``api_key``, an Admin API access
token ``shpat_…``). The store is the connection's name (``shopify:acme-store`` →
``https://acme-store.myshopify.com``) unless ``api_url`` says otherwise.

Streams:

- ``orders``: ``GET /admin/api/2024-10/orders.json?status=any&updated_at_min=…&updated_at_max=…
  &order=updated_at asc&limit=250``, one window per pull from the cursor to the pull's start,
  followed through the ``Link: <…page_info=…>; rel="next"`` header (cursor pagination); each
  page is committed with the window and the next page's URL, so a killed pull resumes there; a
  finished window moves the cursor to its end less five minutes (look-back).
- ``payouts``: ``GET /admin/api/2024-10/shopify_payments/payouts.json?date_min=…``; a payout still
  ``scheduled`` or ``in_transit`` holds the cursor at its date; a ``paid`` one comes with its
  balance transactions
  (``GET …/shopify_payments/balance/transactions.json?payout_id=…``, every page), appended first.

Rate limits: Shopify's REST leaky bucket. Each answer's ``X-Shopify-Shop-Api-Call-Limit``
(``used/size``) is read, and when the bucket is nearly full the next call waits for it to leak
(two calls a second) rather than be refused; a 429 waits its ``Retry-After`` (tenacity), as do
5xx answers and timeouts. Another 4xx stops the pull with Shopify's ``errors``.

Events (type, external id), stream ``{source}/{object id}``:

- order: ``shopify.orders.updated``, ``order-{id}@{updated_at}`` (each update of an order is
  one event; the latest wins in the books, as with the order webhooks);
- refund (each of an order's ``refunds``): ``shopify.refunds.create``, ``refund-{id}``;
- payout: ``shopify.payout``, ``payout-{id}:{status}``;
- balance transaction: ``shopify.balance_transaction``, ``tx-{id}`` (as hand-pushed ones).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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

API = "/admin/api/2024-10"
LOOKBACK = timedelta(minutes=5)
PAGE = 250
LEAK_PER_SECOND = 2.0
"""The REST bucket of a standard store leaks two calls a second."""
_FINAL_PAYOUT = {"paid", "failed", "canceled"}
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class ShopifyPuller(Puller):
    """Orders (with refunds), payouts and their balance transactions (module docstring)."""

    streams: ClassVar[tuple[PulledStream, ...]] = (
        PulledStream(
            "orders", ("id",), "updated_at", ("shopify.orders.updated", "shopify.refunds.create")
        ),
        PulledStream("payouts", ("id",), "date", ("shopify.payout",)),
        PulledStream(
            "balance_transactions",
            ("id",),
            "payout_id",
            ("shopify.balance_transaction",),
            parent="payouts",
        ),
    )
    credentials: ClassVar[tuple[str, ...]] = ("api_key",)
    default_url: ClassVar[str] = ""

    def base_url(self, ctx: PullContext) -> str:
        """``api_url``, else the store of the connection's name on myshopify.com."""
        if ctx.api_url:
            return ctx.api_url.rstrip("/")
        return f"https://{ctx.source.split(':', 1)[1]}.myshopify.com"

    async def pull(self, ctx: PullContext) -> AsyncIterator[Page]:
        bucket = _Bucket()
        now = ctx.now or datetime.now(UTC)
        async for page in self._orders(ctx, bucket, now):
            yield page
        async for page in self._payouts(ctx, bucket, now):
            yield page

    async def health_check(self, ctx: PullContext) -> str:
        """The access token is accepted and the store answers: one order's id listed."""
        url = f"{self.base_url(ctx)}{API}/orders.json?" + urlencode(
            {"status": "any", "limit": 1, "fields": "id"}
        )
        await self._get(ctx, _Bucket(), url)
        return "Shopify accepted the access token"

    # ------------------------------------------------------------------ orders

    async def _orders(
        self, ctx: PullContext, bucket: _Bucket, now: datetime
    ) -> AsyncIterator[Page]:
        state = dict(ctx.state.get("orders") or {})
        if ctx.restart or not state:
            start = _start(ctx)
            state = {"since": start.isoformat(), "until": now.isoformat(), "next": None}
        elif "until" not in state:
            state = {"since": state["since"], "until": now.isoformat(), "next": None}
        url = state.get("next") or (
            f"{self.base_url(ctx)}{API}/orders.json?"
            + urlencode(
                {
                    "status": "any",
                    "updated_at_min": state["since"],
                    "updated_at_max": state["until"],
                    "order": "updated_at asc",
                    "limit": str(PAGE),
                }
            )
        )
        seen = 0
        while True:
            body, following = await self._get(ctx, bucket, url)
            orders = _list(body, "orders")
            events: list[NewEvent] = []
            for order in orders:
                events.append(
                    _event(
                        ctx,
                        "shopify.orders.updated",
                        f"order-{order['id']}@{order.get('updated_at')}",
                        order,
                        str(order.get("updated_at") or order.get("created_at")),
                    )
                )
                for refund in order.get("refunds") or []:
                    if isinstance(refund, dict) and "id" in refund:
                        events.append(
                            _event(
                                ctx,
                                "shopify.refunds.create",
                                f"refund-{refund['id']}",
                                refund,
                                str(refund.get("created_at") or order.get("updated_at")),
                            )
                        )
            seen += len(orders)
            if following is not None:
                cursor = {**state, "next": following}
            else:
                until = datetime.fromisoformat(state["until"])
                since = datetime.fromisoformat(state["since"])
                cursor = {"since": max(since, until - LOOKBACK).isoformat()}
            yield Page("orders", events, cursor, seen=seen)
            if following is None:
                return
            url = following

    # ------------------------------------------------------------------ payouts

    async def _payouts(
        self, ctx: PullContext, bucket: _Bucket, now: datetime
    ) -> AsyncIterator[Page]:
        state = dict(ctx.state.get("payouts") or {})
        if ctx.restart or not state:
            since = _start(ctx).date().isoformat()
        else:
            since = str(state["date_min"])
        url: str | None = f"{self.base_url(ctx)}{API}/shopify_payments/payouts.json?" + urlencode(
            {"date_min": since, "limit": str(PAGE)}
        )
        hold: str | None = None
        latest = since
        seen = 0
        while url is not None:
            body, following = await self._get(ctx, bucket, url)
            payouts = _list(body, "payouts")
            events: list[NewEvent] = []
            for payout in payouts:
                status, day = str(payout.get("status")), str(payout.get("date"))
                latest = max(latest, day)
                if status in _FINAL_PAYOUT:
                    if status == "paid":
                        for tx in await self._transactions(ctx, bucket, payout["id"]):
                            events.append(
                                _event(
                                    ctx,
                                    "shopify.balance_transaction",
                                    f"tx-{tx['id']}",
                                    tx,
                                    str(tx.get("processed_at") or f"{day}T00:00:00+00:00"),
                                )
                            )
                else:
                    hold = day if hold is None else min(hold, day)
                events.append(
                    _event(
                        ctx,
                        "shopify.payout",
                        f"payout-{payout['id']}:{status}",
                        payout,
                        _midnight(day, ctx),
                    )
                )
            seen += len(payouts)
            url = following
            done = hold if hold is not None else latest
            cursor = {"date_min": since if url is not None else done}
            yield Page("payouts", events, cursor, seen=seen)

    async def _transactions(
        self, ctx: PullContext, bucket: _Bucket, payout_id: Any
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        url: str | None = (
            f"{self.base_url(ctx)}{API}/shopify_payments/balance/transactions.json?"
            + urlencode({"payout_id": str(payout_id), "limit": str(PAGE)})
        )
        while url is not None:
            body, url = await self._get(ctx, bucket, url)
            found += _list(body, "transactions")
        return found

    # ------------------------------------------------------------------ HTTP

    async def _get(
        self, ctx: PullContext, bucket: _Bucket, url: str
    ) -> tuple[dict[str, Any], str | None]:
        """The JSON body and the next page's URL (``Link: rel="next"``)."""
        if bucket.over > 0:  # let the bucket leak below the brim before asking again
            await asyncio.sleep(bucket.over / LEAK_PER_SECOND)
            bucket.over = 0.0
        headers = {
            "X-Shopify-Access-Token": ctx.credential("api_key"),
            "Accept": "application/json",
        }

        async def send() -> Response:
            return await ctx.transport.request("GET", url, headers, None)

        response = await call(ctx, send, _judge)
        bucket.over = _overflow(response.header("X-Shopify-Shop-Api-Call-Limit"))
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError as exc:
            raise SourceUnavailable("Shopify: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise SourceUnavailable("Shopify: the answer is not a JSON object")
        link = _NEXT.search(response.header("Link") or "")
        return body, None if link is None else link[1]


@dataclass
class _Bucket:
    """What this pull knows of the store's REST bucket: calls to leak before the next one."""

    over: float = 0.0


def _overflow(limit: str | None) -> float:
    """How many calls the bucket must leak before the next one is safe: none until it is
    nine-tenths full (``used/size`` as Shopify writes it)."""
    try:
        used, size = (float(part) for part in (limit or "").split("/"))
    except ValueError:
        return 0.0
    return max(0.0, used - 0.9 * size)


def _judge(response: Response) -> Response:
    if response.status == 200:
        return response
    where = f"Shopify: HTTP {response.status}: {_errors(response.body)}"
    if response.status == 429 or response.status >= 500:
        retry = response.header("Retry-After") or ""
        try:
            wait: float | None = float(retry)
        except ValueError:
            wait = None
        if wait is not None and not (math.isfinite(wait) and wait >= 0):
            wait = None
        raise SourceUnavailable(where, retry_after=wait)
    raise SourceRejected(where)


def _errors(body: bytes) -> str:
    try:
        errors = orjson.loads(body).get("errors")
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")
    if isinstance(errors, dict):
        return "; ".join(f"{k}: {v}" for k, v in errors.items())[:300]
    return str(errors)[:300]


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list):
        raise SourceUnavailable(f"Shopify: the answer has no {key} list")
    return [item for item in items if isinstance(item, dict) and "id" in item]


def _start(ctx: PullContext) -> datetime:
    """Where a stream never pulled (or restarted with ``--since``) starts."""
    if ctx.since is None:
        return datetime(2006, 6, 1, tzinfo=UTC)  # before the first Shopify store
    return datetime.combine(ctx.since, time(), ctx.zone or UTC)


def _midnight(day: str, ctx: PullContext) -> str:
    try:
        return datetime.combine(date.fromisoformat(day), time(), ctx.zone or UTC).isoformat()
    except ValueError:
        return (ctx.now or datetime.now(UTC)).isoformat()


def _event(
    ctx: PullContext, event_type: str, external_id: str, obj: dict[str, Any], when: str
) -> NewEvent:
    try:
        occurred = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        occurred = ctx.now or datetime.now(UTC)
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return NewEvent(
        tenant=ctx.tenant,
        source=ctx.source,
        external_id=external_id,
        type=event_type,
        occurred_at=occurred,
        data=obj,
        stream=f"{ctx.source}/{obj['id']}",
        meta={"pulled": True},
    )
