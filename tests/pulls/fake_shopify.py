"""A local Shopify REST Admin API (2024-10) for the pull tests (aiohttp on 127.0.0.1).

It behaves like Shopify's documentation where the puller relies on it:
``X-Shopify-Access-Token`` (a wrong one: 401 ``{"errors": "[API] Invalid API key or access token
(unrecognized login or wrong password)"}``); ``GET /admin/api/2024-10/orders.json`` with
``status``, ``updated_at_min``/``updated_at_max``, ``order=updated_at asc``, ``limit`` (1-250,
default 50), each order carrying its ``refunds``; ``…/shopify_payments/payouts.json`` with
``date_min`` (newest first); ``…/shopify_payments/balance/transactions.json`` with ``payout_id``;
cursor pagination through ``Link: <…?limit=…&page_info=…>; rel="next"`` (a request with
``page_info`` may carry only ``limit``: anything else is a 400, as Shopify answers); the REST
leaky bucket (``bucket`` calls, leaking ``leak`` a second; ``X-Shopify-Shop-Api-Call-Limit:
used/size`` on every answer; over it, 429 with ``Retry-After``); faults at a rate or on demand
(``429``, ``500``, ``503``, ``timeout``). The store's data are built from Shopify's reference
objects (``tests/fixtures/shopify``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
ORDER: dict[str, Any] = json.loads((FIXTURES / "order.json").read_text())["order"]
REFUND: dict[str, Any] = json.loads((FIXTURES / "refund.json").read_text())["refund"]
TOKEN = "shpat_fake0123456789abcdef0123456789ab"
API = "/admin/api/2024-10"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class Store:
    """A store's orders (with refunds), payouts and balance transactions."""

    def __init__(self) -> None:
        self.orders: dict[int, dict[str, Any]] = {}
        self.payouts: dict[int, dict[str, Any]] = {}
        self.transactions: dict[int, list[dict[str, Any]]] = {}
        self._next = 1000

    def _id(self) -> int:
        self._next += 1
        return self._next

    def order(self, created: datetime) -> dict[str, Any]:
        order: dict[str, Any] = copy.deepcopy(ORDER)
        order_id = self._id()
        order.update(
            id=order_id,
            name=f"#{order_id}",
            order_number=order_id,
            created_at=stamp(created),
            updated_at=stamp(created),
            financial_status="paid",
            refunds=[],
        )
        self.orders[order_id] = order
        return order

    def refund(self, order_id: int, when: datetime) -> dict[str, Any]:
        refund: dict[str, Any] = copy.deepcopy(REFUND)
        refund.update(id=self._id(), order_id=order_id, created_at=stamp(when))
        order = self.orders[order_id]
        order["refunds"].append(refund)
        order["updated_at"] = stamp(when)
        return refund

    def touch(self, order_id: int, when: datetime, **fields: Any) -> None:
        self.orders[order_id].update(updated_at=stamp(when), **fields)

    def payout(self, day: str, status: str, transactions: int) -> dict[str, Any]:
        payout_id = self._id()
        txs: list[dict[str, Any]] = []
        for n in range(transactions):
            tx_id = self._id()
            txs.append(
                {
                    "id": tx_id,
                    "type": "charge",
                    "test": False,
                    "payout_id": payout_id,
                    "payout_status": status,
                    "currency": "USD",
                    "amount": f"{10 + n}.00",
                    "fee": "0.59",
                    "net": f"{9 + n}.41",
                    "source_id": tx_id,
                    "source_type": "charge",
                    "source_order_id": None,
                    "source_order_transaction_id": None,
                    "processed_at": f"{day}T12:00:00-05:00",
                }
            )
        amount = sum(int(str(t["net"]).replace(".", "")) for t in txs)
        payout = {
            "id": payout_id,
            "status": status,
            "date": day,
            "currency": "USD",
            "amount": f"{amount // 100}.{amount % 100:02d}",
        }
        self.payouts[payout_id] = payout
        self.transactions[payout_id] = txs
        return payout

    def pay(self) -> None:
        for payout in self.payouts.values():
            if payout["status"] in ("scheduled", "in_transit"):
                payout["status"] = "paid"
                for tx in self.transactions[payout["id"]]:
                    tx["payout_status"] = "paid"

    def expected_ids(self) -> set[str]:
        ids = {f"order-{o['id']}@{o['updated_at']}" for o in self.orders.values()}
        ids |= {f"refund-{r['id']}" for o in self.orders.values() for r in o["refunds"]}
        for payout in self.payouts.values():
            ids.add(f"payout-{payout['id']}:{payout['status']}")
            if payout["status"] == "paid":
                ids |= {f"tx-{t['id']}" for t in self.transactions[payout["id"]]}
        return ids


class FakeShopify:
    """The API over a ``Store`` (module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        bucket: int = 40,
        leak: float = 1000.0,
        fault_rate: float = 0.0,
        seed: int = 1,
        stall: float = 3.0,
        retry_after: str = "0.01",
    ) -> None:
        self.store = store
        self.bucket, self.leak = bucket, leak
        self.level, self.leaked_at = 0.0, time.monotonic()
        self.fault_rate, self.random, self.stall = fault_rate, random.Random(seed), stall
        self.retry_after = retry_after
        self.faults: deque[str] = deque()
        self.injected: collections.Counter[str] = collections.Counter()
        self.calls = 0
        self.throttled = 0
        self._pages: dict[str, tuple[str, list[dict[str, Any]], int]] = {}
        """page_info → (resource, the listing it pages through, offset)."""
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(f"{API}/orders.json", self._orders)
        app.router.add_get(f"{API}/shopify_payments/payouts.json", self._payouts)
        app.router.add_get(f"{API}/shopify_payments/balance/transactions.json", self._transactions)
        return app

    # ------------------------------------------------------------------ plumbing

    def _fault(self) -> str | None:
        if self.faults:
            fault: str | None = self.faults.popleft()
        elif self.fault_rate > 0 and self.random.random() < self.fault_rate:
            fault = self.random.choice(("429", "500", "503", "timeout"))
        else:
            fault = None
        if fault is not None:
            self.injected[fault] += 1
        return fault

    def _limit_header(self) -> dict[str, str]:
        return {"X-Shopify-Shop-Api-Call-Limit": f"{int(self.level)}/{self.bucket}"}

    async def _gate(self, request: web.Request) -> web.Response | None:
        """Faults, authentication and the leaky bucket: an answer, or None to go on."""
        self.calls += 1
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.leaked_at) * self.leak)
        self.leaked_at = now
        fault = self._fault()
        if fault == "429" or self.level + 1 > self.bucket:
            self.throttled += fault != "429"
            return web.json_response(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates "
                    "to resume uninterrupted service."
                },
                status=429,
                headers={"Retry-After": self.retry_after, **self._limit_header()},
            )
        if fault in ("500", "503"):
            return web.json_response({"errors": "Internal Server Error"}, status=int(fault))
        if fault == "timeout":
            await asyncio.sleep(self.stall)
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return web.json_response(
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or "
                    "wrong password)"
                },
                status=401,
            )
        self.level += 1
        return None

    def _page(
        self, request: web.Request, key: str, listing: list[dict[str, Any]], default: int = 50
    ) -> web.Response:
        """A page of ``listing`` (filtered and ordered), or of the listing the ``page_info``
        cursor pages through, from the cursor's offset."""
        query = request.rel_url.query
        offset = 0
        if "page_info" in query:
            extra = set(query) - {"page_info", "limit", "fields"}
            if extra:
                return web.json_response(
                    {"errors": f"page_info: cannot be combined with {sorted(extra)[0]}"},
                    status=400,
                )
            found = self._pages.get(query["page_info"])
            if found is None or found[0] != key:
                return web.json_response({"errors": "page_info: Invalid value."}, status=400)
            _, listing, offset = found
        try:
            limit = int(query.get("limit", default))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 250:
            return web.json_response({"errors": {"limit": "must be 1 to 250"}}, status=400)
        chunk = listing[offset : offset + limit]
        headers = self._limit_header()
        if offset + limit < len(listing):
            token = secrets.token_urlsafe(16)
            self._pages[token] = (key, listing, offset + limit)
            link = f"{self.url}{request.rel_url.path}?" + urlencode(
                {"limit": limit, "page_info": token}
            )
            headers["Link"] = f'<{link}>; rel="next"'
        return web.Response(
            body=orjson.dumps({key: chunk}), content_type="application/json", headers=headers
        )

    # ------------------------------------------------------------------ resources

    async def _orders(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        query = request.rel_url.query
        orders = list(self.store.orders.values())
        for bound, sign in (("updated_at_min", 1), ("updated_at_max", -1)):
            if bound in query:
                edge = datetime.fromisoformat(query[bound].replace("Z", "+00:00"))
                orders = [
                    o
                    for o in orders
                    if (datetime.fromisoformat(o["updated_at"]) - edge) * sign >= timedelta(0)
                ]
        orders.sort(key=lambda o: (o["updated_at"], o["id"]))
        return self._page(request, "orders", copy.deepcopy(orders))

    async def _payouts(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        query = request.rel_url.query
        payouts = list(self.store.payouts.values())
        if "date_min" in query:
            payouts = [p for p in payouts if p["date"] >= query["date_min"]]
        payouts.sort(key=lambda p: (p["date"], p["id"]), reverse=True)
        return self._page(request, "payouts", copy.deepcopy(payouts))

    async def _transactions(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        payout = request.rel_url.query.get("payout_id")
        txs = [] if payout is None else self.store.transactions.get(int(payout), [])
        return self._page(request, "transactions", copy.deepcopy(txs))


@contextlib.asynccontextmanager
async def serve(fake: FakeShopify) -> AsyncIterator[FakeShopify]:
    """Run ``fake`` on a free port of 127.0.0.1 for the block."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()
