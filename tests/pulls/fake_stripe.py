"""A local Stripe-compatible API (aiohttp on 127.0.0.1) for the pull tests.

It behaves like Stripe's documented API where the puller relies on it:

- ``Authorization: Bearer KEY`` (a secret ``sk_…`` or restricted ``rk_…`` key); a wrong key is
  401 ``{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided:
  rk_test_****1234"}}`` (Stripe masks the key), a restricted key without read permission for a
  resource is 403 with Stripe's permission message;
- list objects (``{"object": "list", "url", "has_more", "data"}``) for ``/v1/charges``,
  ``/v1/refunds``, ``/v1/disputes``, ``/v1/payouts`` and ``/v1/balance_transactions``, newest
  first (``created`` then ``id`` descending), ``limit`` 1-100 (default 10), ``starting_after``,
  ``ending_before``, ``created[gt|gte|lt|lte]``, ``payout=`` for balance transactions (the ones a
  payout settled, its own included), ``expand[]=data.balance_transaction``, and
  ``include[]=total_count``; an unknown parameter or a bad value is a 400
  ``invalid_request_error`` naming the ``param``;
- faults at random (``fault_rate`` of the requests, kinds drawn from ``fault_kinds`` by a
  seeded ``random``): ``429`` (``rate_limit_error``, code ``rate_limit``), ``500``
  (``api_error`` with ``Stripe-Should-Retry: true``), ``503``, ``timeout`` (the server stalls
  ``stall`` seconds before answering), ``drop`` (the connection is cut); or on demand (the
  ``faults`` deque). ``injected`` counts them by kind.

The account's history is built by ``History`` from a seed: charges with their balance
transactions (a 2.9% + 30 fee), partial refunds, disputes (lost, won, open), and a daily
automatic payout of what became available, ``paid`` once its arrival date is past the fake's
``now`` (else ``in_transit``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import operator
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

DAY = 86400
_RESOURCES = {
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "payouts": "payout",
    "balance_transactions": "balance_transaction",
}


@dataclass
class History:
    """A Stripe account's objects, by resource, built day by day (``add_days``)."""

    seed: int = 7
    charges: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    balance_transactions: list[dict[str, Any]] = field(default_factory=list)
    settled_by: dict[str, list[str]] = field(default_factory=dict)
    """payout id → the ids of the balance transactions it settled (its own last)."""
    _unpaid: list[dict[str, Any]] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def _next(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count:07d}"

    def _bt(
        self, source: str, amount: int, fee: int, category: str, created: int
    ) -> dict[str, Any]:
        bt = {
            "id": self._next("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": created + 2 * DAY,
            "created": created,
            "currency": "usd",
            "description": None,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": (
                [
                    {
                        "amount": fee,
                        "application": None,
                        "currency": "usd",
                        "description": "Stripe processing fees",
                        "type": "stripe_fee",
                    }
                ]
                if fee
                else []
            ),
            "net": amount - fee,
            "reporting_category": category,
            "source": source,
            "status": "available",
            "type": category if category != "dispute_reversal" else "adjustment",
        }
        self.balance_transactions.append(bt)
        self._unpaid.append(bt)
        return bt

    def add_days(self, start: int, days: int, per_day: int) -> None:
        """``days`` days of activity from ``start`` (Unix seconds, a UTC midnight): ``per_day``
        charges a day, some refunded or disputed, and each day's payout of what is available."""
        rng = self.random
        for day in range(days):
            base = start + day * DAY
            self._payout(base + 60)
            for i in range(per_day):
                created = base + 3600 + i * (20 * 3600 // max(per_day, 1)) + rng.randrange(60)
                self.charge(created, rng.randrange(500, 20_000))

    def charge(self, created: int, amount: int) -> dict[str, Any]:
        """A succeeded charge at ``created`` (maybe refunded or disputed later)."""
        rng = self.random
        charge_id = self._next("ch")
        fee = round(amount * 0.029) + 30
        bt = self._bt(charge_id, amount, fee, "charge", created)
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": bt["id"],
            "captured": True,
            "created": created,
            "currency": "usd",
            "description": f"Order {charge_id}",
            "disputed": False,
            "metadata": {"order_id": f"order_{charge_id}"},
            "paid": True,
            "refunded": False,
            "status": "succeeded",
        }
        self.charges.append(charge)
        roll = rng.random()
        if roll < 0.10:
            refund_amount = rng.randrange(100, amount)
            when = created + rng.randrange(600, 3 * 3600)
            refund_id = self._next("re")
            rbt = self._bt(refund_id, -refund_amount, 0, "refund", when)
            self.refunds.append(
                {
                    "id": refund_id,
                    "object": "refund",
                    "amount": refund_amount,
                    "balance_transaction": rbt["id"],
                    "charge": charge_id,
                    "created": when,
                    "currency": "usd",
                    "metadata": {"order_id": f"order_{charge_id}"},
                    "reason": "requested_by_customer",
                    "status": "succeeded",
                }
            )
            charge["amount_refunded"] = refund_amount
        elif roll < 0.11:
            self.dispute(charge, created + 3 * 3600, rng.choice(("lost", "won", "needs_response")))
        return charge

    def dispute(self, charge: dict[str, Any], created: int, status: str) -> dict[str, Any]:
        """A dispute of ``charge``: funds withdrawn (with the 15.00 fee), and reinstated if won."""
        dispute_id = self._next("dp")
        amount = charge["amount"]
        bts = [self._bt(dispute_id, -amount, 1500, "dispute", created)]
        if status == "won":
            bts.append(self._bt(dispute_id, amount, -1500, "dispute_reversal", created + 60))
        dispute = {
            "id": dispute_id,
            "object": "dispute",
            "amount": amount,
            "balance_transactions": bts,
            "charge": charge["id"],
            "created": created,
            "currency": "usd",
            "is_charge_refundable": False,
            "metadata": {},
            "reason": "fraudulent",
            "status": status,
        }
        charge["disputed"] = True
        self.disputes.append(dispute)
        return dispute

    def _payout(self, created: int) -> None:
        ready = [bt for bt in self._unpaid if bt["available_on"] <= created]
        amount = sum(bt["net"] for bt in ready)
        if amount <= 0:
            return
        ready_ids = {bt["id"] for bt in ready}
        self._unpaid = [bt for bt in self._unpaid if bt["id"] not in ready_ids]
        payout_id = self._next("po")
        own = self._bt(payout_id, -amount, 0, "payout", created)
        self._unpaid.remove(own)
        self.payouts.append(
            {
                "id": payout_id,
                "object": "payout",
                "amount": amount,
                "arrival_date": created - created % DAY + DAY,
                "automatic": True,
                "balance_transaction": own["id"],
                "created": created,
                "currency": "usd",
                "description": "STRIPE PAYOUT",
                "method": "standard",
                "statement_descriptor": None,
                "status": "in_transit",
                "type": "bank_account",
            }
        )
        self.settled_by[payout_id] = [bt["id"] for bt in ready] + [own["id"]]

    def settle(self, now: int) -> None:
        """Payouts whose arrival date has come are ``paid``."""
        for payout in self.payouts:
            if payout["status"] == "in_transit" and payout["arrival_date"] <= now:
                payout["status"] = "paid"

    def objects(self, resource: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = getattr(self, resource)
        return found

    def expected_ids(self, now: float | None = None) -> set[str]:
        """The external ids a complete pull at ``now`` appends (the puller's documented
        scheme), of the objects created by then (all when ``now`` is None)."""

        def exists(obj: dict[str, Any]) -> bool:
            return now is None or obj["created"] <= now

        ids = {f"{c['id']}:{c['status']}" for c in self.charges if exists(c)}
        ids |= {f"{r['id']}:{r['status']}" for r in self.refunds if exists(r)}
        for d in filter(exists, self.disputes):
            ids.add(f"{d['id']}:{d['status']}")
            for bt in d["balance_transactions"]:
                ids.add(
                    f"{d['id']}:{'funds_withdrawn' if bt['amount'] < 0 else 'funds_reinstated'}"
                )
        for p in filter(exists, self.payouts):
            ids.add(f"{p['id']}:{p['status']}")
            if p["status"] in ("paid", "failed"):
                ids.update(self.settled_by[p["id"]])
        return ids


class FakeStripe:
    """The API over a ``History`` (see the module docstring)."""

    def __init__(
        self,
        history: History,
        *,
        api_key: str = "rk_test_51FakeRestrictedKeyForPulls0000secret",
        readable: tuple[str, ...] = tuple(_RESOURCES),
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = ("429", "500", "503", "timeout", "drop"),
        seed: int = 1,
        stall: float = 5.0,
    ) -> None:
        self.history = history
        self.api_key = api_key
        self.readable = set(readable)
        self.fault_rate = fault_rate
        self.fault_kinds = fault_kinds
        self.random = random.Random(seed)
        self.stall = stall
        self.faults: deque[str] = deque()
        self.injected: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self.seen_keys: list[str] = []
        self.url = ""
        self.now: float | None = None
        """The API's clock for what exists (None: the real one)."""
        self.on_request: Callable[[int], None] | None = None
        """Called with the number of requests so far, before each is answered."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/{resource}", self._list)
        return app

    def _fault(self) -> str | None:
        if self.faults:
            fault: str | None = self.faults.popleft()
        elif self.fault_rate > 0 and self.random.random() < self.fault_rate:
            fault = self.random.choice(self.fault_kinds)
        else:
            fault = None
        if fault is not None:
            self.injected[fault] += 1
        return fault

    async def _list(self, request: web.Request) -> web.StreamResponse:
        resource = request.match_info["resource"]
        self.requests[resource] += 1
        if self.on_request is not None:
            self.on_request(self.requests.total())
        fault = self._fault()
        if fault == "429":
            return _error(429, "rate_limit_error", "Too many requests hit the API too quickly.",
                          code="rate_limit")  # fmt: skip
        if fault in ("500", "503"):
            return _error(int(fault), "api_error", "An unknown error occurred.",
                          headers={"Stripe-Should-Retry": "true"})  # fmt: skip
        if fault == "drop" and request.transport is not None:
            request.transport.close()
            raise asyncio.CancelledError
        if fault == "timeout":
            await asyncio.sleep(self.stall)
        auth = request.headers.get("Authorization", "")
        given = auth.removeprefix("Bearer ").strip()
        self.seen_keys.append(given)
        if not auth.startswith("Bearer ") or given != self.api_key:
            masked = f"{given[:8]}****{given[-4:]}" if len(given) > 12 else "****"
            return _error(401, "invalid_request_error", f"Invalid API Key provided: {masked}")
        if resource not in _RESOURCES:
            return _error(404, "invalid_request_error", f"Unrecognized request URL (GET: /v1/"
                          f"{resource}).")  # fmt: skip
        if resource not in self.readable:
            return _error(
                403,
                "invalid_request_error",
                f"The provided key '{self.api_key[:8]}****{self.api_key[-4:]}' does not have the "
                f"required permissions for this endpoint. Having the '{resource}_read' "
                "permission would allow this request to continue.",
                code="secret_key_required",
            )
        try:
            body = self._listing(resource, request)
        except _BadParam as exc:
            return _error(400, "invalid_request_error", exc.message, param=exc.param)
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _listing(self, resource: str, request: web.Request) -> dict[str, Any]:
        query = request.rel_url.query
        allowed = {"limit", "starting_after", "ending_before", "expand[]", "include[]",
                   "created[gt]", "created[gte]", "created[lt]", "created[lte]"}  # fmt: skip
        if resource == "balance_transactions":
            allowed |= {"payout", "type"}
        for key in query:
            if key not in allowed:
                raise _BadParam(key, f"Received unknown parameter: {key}")
        limit = _int(query, "limit", 10)
        if not 1 <= limit <= 100:
            raise _BadParam("limit", "Invalid integer: limit must be between 1 and 100")
        now = time.time() if self.now is None else self.now
        items = [o for o in self.history.objects(resource) if o["created"] <= now]
        tests: dict[str, Callable[[int, int], bool]] = {
            "created[gt]": operator.gt,
            "created[gte]": operator.ge,
            "created[lt]": operator.lt,
            "created[lte]": operator.le,
        }
        for key, test in tests.items():
            if key in query:
                bound = _int(query, key, 0)
                items = [o for o in items if test(o["created"], bound)]
        if "payout" in query:
            settled = self.history.settled_by.get(query["payout"])
            if settled is None:
                raise _BadParam("payout", f"No such payout: '{query['payout']}'")
            wanted = set(settled)
            items = [o for o in items if o["id"] in wanted]
        items.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
        total = len(items)
        if "starting_after" in query:
            index = _index(items, query["starting_after"], "starting_after")
            items = items[index + 1 :]
        elif "ending_before" in query:
            index = _index(items, query["ending_before"], "ending_before")
            items = items[max(0, index - limit) : index]
        page = items[:limit]
        expand = query.getall("expand[]", [])
        for path in expand:
            if path != "data.balance_transaction" or resource not in ("charges", "refunds"):
                raise _BadParam("expand", f"This property cannot be expanded ({path}).")
        if expand:
            by_id = {bt["id"]: bt for bt in self.history.balance_transactions}
            page = [{**o, "balance_transaction": by_id.get(o["balance_transaction"])} for o in page]
        listing: dict[str, Any] = {
            "object": "list",
            "url": f"/v1/{resource}",
            "has_more": len(items) > limit,
            "data": page,
        }
        if "total_count" in query.getall("include[]", []):
            listing["total_count"] = total
        return listing


class _BadParam(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def _int(query: Any, key: str, default: int) -> int:
    if key not in query:
        return default
    try:
        return int(query[key])
    except ValueError:
        raise _BadParam(key, f"Invalid integer: {query[key]}") from None


def _index(items: list[dict[str, Any]], object_id: str, param: str) -> int:
    for index, obj in enumerate(items):
        if obj["id"] == object_id:
            return index
    raise _BadParam(param, f"No such object: '{object_id}'")


def _error(
    status: int,
    kind: str,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return web.Response(
        status=status,
        body=orjson.dumps({"error": error}),
        content_type="application/json",
        headers=headers,
    )


@contextlib.asynccontextmanager
async def serve(fake: FakeStripe) -> AsyncIterator[FakeStripe]:
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
