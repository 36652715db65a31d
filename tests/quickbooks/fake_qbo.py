"""A local QuickBooks Online server (aiohttp on 127.0.0.1) for the QuickBooks target's tests.

It behaves like the Accounting API v3 as Intuit documents it, where the target relies on it:

- OAuth2 at ``/oauth2/v1/tokens/bearer``: the refresh-token grant with the app's client id and
  secret (HTTP Basic). Intuit says the refresh token may change on any refresh and the latest
  must be kept; the fake rotates it on *every* refresh (the harshest reading). A superseded
  token still refreshes within ``grace`` seconds (default 24 h), so a refresh whose answer was
  lost does not lock the app out: that is the fake's assumption (set ``grace = 0`` to test
  without it). Access tokens live an hour; ``access_tokens.clear()`` revokes them.
- ``/v3/company/{realm}/…`` with the bearer token and the realm checked; ``minorversion``
  recorded for every call (``minor_versions``); an ``intuit_tid`` header on every answer
  (``tids``); at most 10 calls in flight and 500 a minute, beyond them 429 with a
  ``ThrottleExceeded`` Fault.
- Entities Customer, Item, Account (read only, the chart given), Invoice, Payment, Purchase,
  Deposit, Transfer, RefundReceipt, JournalEntry: ``POST /{entity}`` creates (no ``Id``) or
  updates (``Id`` and the current ``SyncToken``, full or ``sparse``; an old token → Fault 5010
  ``Stale Object Error``); ``?operation=delete`` deletes; ``?operation=void`` voids an Invoice
  and ``?operation=update&include=void`` a Payment (amounts zeroed, note ``Voided``);
  ``GET /{entity}/{id}`` reads (a deleted one → Fault 610 ``Object Not Found``);
  ``GET /query?query=select * from E [where F = '…' [and …]] [startposition N] [maxresults
  M]`` lists (at most 1,000 a page).
- QuickBooks' rules, refused with a 400 ``ValidationFault`` (``Fault.Error[].Message``,
  ``Detail``, ``code``): an unknown property (2010), a reference to an account, item,
  customer or invoice that does not exist (2500), more decimals than the currency has, a
  journal that does not balance, a receivable line without a customer, a non-bank account to
  deposit to or pay from, a duplicate customer or item name (6240) or invoice ``DocNumber``
  (6140), a payment over the invoice's open balance or for another customer, a negative total;
  payments lower the invoice's ``Balance``.
- ``requestid``: unique per company (Intuit: "must be unique for all requests for a given
  company"); a repeated one is answered with the first response, whatever the request.
- Faults injected on the write calls, on demand (the ``faults`` deque) or at random
  (``fault_rate``, kinds drawn from ``fault_kinds``, seeded): ``500``, ``503``, ``429``,
  ``drop`` (the write is applied, then the connection is cut), ``timeout`` (applied, then the
  server stalls ``stall`` seconds before answering), ``timeout_before`` (stalls without
  applying). ``injected`` counts them by kind.

Where Intuit's documentation is silent the fake takes a reading, noted where it does: voiding
or deleting an invoice with payments applied, or updating it below what was paid, is refused;
``DocNumber`` uniqueness counts live invoices only.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import random
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from hub.domain.money import exponent
from hub.spi.config import Account

ENTITIES = (
    "Customer",
    "Item",
    "Account",
    "Invoice",
    "Payment",
    "Purchase",
    "Deposit",
    "Transfer",
    "RefundReceipt",
    "JournalEntry",
)
_BY_PATH = {e.lower(): e for e in ENTITIES}
TRANSACTIONS = ENTITIES[3:]
"""The transaction entities (what ledgerhub writes, besides customers and items)."""
_COMMON = {"Id", "SyncToken", "sparse", "domain", "MetaData"}
_PROPERTIES = {
    "Customer": {"DisplayName"},
    "Item": {"Name", "Type", "IncomeAccountRef"},
    "Invoice": {
        "CustomerRef",
        "TxnDate",
        "DueDate",
        "CurrencyRef",
        "PrivateNote",
        "Line",
        "DocNumber",
    },
    "Payment": {
        "CustomerRef",
        "TotalAmt",
        "TxnDate",
        "CurrencyRef",
        "DepositToAccountRef",
        "PrivateNote",
        "Line",
    },
    "Purchase": {
        "PaymentType",
        "AccountRef",
        "TxnDate",
        "CurrencyRef",
        "PrivateNote",
        "Line",
        "EntityRef",
    },
    "Deposit": {"DepositToAccountRef", "TxnDate", "CurrencyRef", "PrivateNote", "Line"},
    "Transfer": {"FromAccountRef", "ToAccountRef", "Amount", "TxnDate", "PrivateNote"},
    "RefundReceipt": {
        "CustomerRef",
        "DepositToAccountRef",
        "TxnDate",
        "CurrencyRef",
        "PrivateNote",
        "Line",
    },
    "JournalEntry": {"TxnDate", "CurrencyRef", "PrivateNote", "Line"},
}
"""The properties a request may set, per entity (what ledgerhub sends is a subset of what
QuickBooks accepts; anything else is refused as QuickBooks refuses an unknown property)."""
_COMPUTED = {"TotalAmt", "Balance"}
"""Properties the fake computes (a full update keeps them)."""
_FILTERS = {"Id", "DisplayName", "Name", "DocNumber", "TxnDate"}
_QUERY = re.compile(
    r"^select \* from (\w+)(?: where (.+?))?(?: startposition (\d+))?(?: maxresults (\d+))?$",
    re.IGNORECASE,
)
_CONDITION = re.compile(r"^(\w+) = '((?:[^'\\]|\\.)*)'$")
_TAG = re.compile(r"\[(lh-[0-9a-f]+) ([0-9a-f]{64})(?: ([a-z0-9]+))?\]$")
_DEPOSIT_TO = {"Bank", "Other Current Asset"}
_PAY_FROM = {"Bank", "Credit Card"}
RECEIVABLE = "Accounts Receivable"
_AR_NEEDS_CUSTOMER = (
    "Business Validation Error: When you use Accounts Receivable, you must choose a customer "
    "in the Name field."
)


def account_type(account: Account) -> str:
    """The QuickBooks ``AccountType`` a chart account is set up as: banks and processor
    clearing accounts as Bank accounts, the receivable as Accounts Receivable, the rest by the
    chart's type."""
    role = account.role or ""
    if role.startswith(("bank:", "clearing:")):
        return "Bank"
    if role == "receivable":
        return RECEIVABLE
    return {
        "asset": "Other Current Asset",
        "liability": "Other Current Liability",
        "equity": "Equity",
        "income": "Income",
        "expense": "Expense",
    }.get(account.type, "Other Current Asset")


def chart_accounts(chart: Iterable[Account], *, numbered: bool = True) -> list[dict[str, Any]]:
    """QuickBooks Accounts for a ledgerhub chart (``AcctNum`` = the code unless ``numbered``
    is false: a company with account numbers turned off, found by name)."""
    found = []
    for index, account in enumerate(sorted(chart, key=lambda a: a.code), start=1):
        row = {
            "Id": str(100 + index),
            "Name": account.name,
            "AccountType": account_type(account),
            "Active": True,
            "Classification": account.type.capitalize(),
            "SyncToken": "0",
        }
        if numbered:
            row["AcctNum"] = account.code
        found.append(row)
    return found


class Refused(Exception):
    """A QuickBooks ``ValidationFault`` (400): its code, message and detail."""

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail or message


def _business(detail: str) -> Refused:
    message = "A business validation error has occurred while processing your request"
    return Refused("6000", message, f"Business Validation Error: {detail}")


def _invalid_reference(kind: str, value: object) -> Refused:
    return Refused(
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : {kind} element id {value} not found",
    )


class FakeQuickBooks:
    """State and faults of the fake; ``url`` once started (the API base is ``url + "/v3"``,
    the token endpoint ``url + "/oauth2/v1/tokens/bearer"``).

    ``store[entity]`` holds each entity's objects by Id (deleted ones are gone; voided ones
    stay, zeroed, in ``voided``).
    """

    fault_kinds: tuple[str, ...] = ("500", "503", "429", "timeout", "drop")

    def __init__(
        self,
        accounts: list[dict[str, Any]],
        refresh_token: str,
        realm_id: str,
        *,
        client: tuple[str, str] = ("client", "secret"),
        seed: int = 0,
    ) -> None:
        self.realm_id = realm_id
        self.client = client
        self.refresh_token = refresh_token
        self.grace = 24 * 3600.0
        self.rotated: dict[str, float] = {}
        """Superseded refresh tokens → until when (loop time) they still refresh."""
        self.access_tokens: dict[str, float] = {}
        """Access token → when it expires (loop time)."""
        self.refreshes = 0
        self.store: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        for account in accounts:
            self.store["Account"][account["Id"]] = dict(account)
        self.voided: set[tuple[str, str]] = set()
        self.replies: dict[str, tuple[int, bytes]] = {}
        self.faults: deque[str] = deque()
        self.fault_rate = 0.0
        self.random = random.Random(seed)
        self.injected: collections.Counter[str] = collections.Counter()
        self.stall = 5.0
        self.latency = 0.0
        self.concurrent = 10
        self.per_minute = 500
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: deque[float] = deque()
        self.throttled = 0
        self.writes = 0
        """Writes applied (creates, updates, voids, deletes; not replays)."""
        self.requests: list[tuple[str, str]] = []
        """(method, path with query) of every API call, in order."""
        self.minor_versions: list[str | None] = []
        self.tids: list[str] = []
        self.url = ""
        self._next_id = 1000

    # ------------------------------------------------------------------ for the tests

    def live(self, entity: str) -> list[dict[str, Any]]:
        """The entity's objects that are neither deleted nor voided."""
        return [o for i, o in self.store[entity].items() if (entity, i) not in self.voided]

    def live_tags(self) -> list[tuple[str, str, str, str]]:
        """(entity, idempotency key, content hash, part) of every live transaction ledgerhub
        wrote (the tag ending its ``PrivateNote``)."""
        found = []
        for entity in TRANSACTIONS:
            for item in self.live(entity):
                tag = _TAG.search(str(item.get("PrivateNote") or ""))
                if tag is not None:
                    found.append((entity, tag[1], tag[2], tag[3] or ""))
        return found

    def live_keys(self) -> list[str]:
        """The idempotency key of every live document ledgerhub wrote (a part, such as a
        payment's fee Purchase, is not counted again)."""
        return [key for _, key, _, part in self.live_tags() if not part]

    def account_id(self, code: str) -> str:
        """The Id of the Account numbered ``code``."""
        return next(i for i, a in self.store["Account"].items() if a.get("AcctNum") == code)

    def code(self, ref: dict[str, Any]) -> str:
        """The ``AcctNum`` of the Account a reference names."""
        return str(self.store["Account"][ref["value"]].get("AcctNum", ""))

    # ------------------------------------------------------------------ the app

    def app(self) -> web.Application:
        @web.middleware
        async def intuit(request: web.Request, handler: Any) -> web.StreamResponse:
            if not request.path.startswith("/v3/"):
                response: web.StreamResponse = await handler(request)
                return response
            self.requests.append((request.method, request.path_qs))
            self.minor_versions.append(request.query.get("minorversion"))
            refused = self._admit(request)
            if refused is not None:
                return self._tagged(refused)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.latency)  # a real server takes a while
                return self._tagged(await handler(request))
            finally:
                self.in_flight -= 1

        app = web.Application(middlewares=[intuit])
        app.router.add_post("/oauth2/v1/tokens/bearer", self._token)
        app.router.add_get("/v3/company/{realm}/query", self._query)
        app.router.add_get("/v3/company/{realm}/{entity}/{id}", self._read)
        app.router.add_post("/v3/company/{realm}/{entity}", self._write)
        return app

    def _tagged(self, response: web.StreamResponse) -> web.StreamResponse:
        tid = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:16]}"
        response.headers["intuit_tid"] = tid
        self.tids.append(tid)
        return response

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(":".join(self.client).encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        given = str(form.get("refresh_token", ""))
        now = asyncio.get_running_loop().time()
        in_grace = given in self.rotated and now < self.rotated[given]
        if form.get("grant_type") != "refresh_token" or (
            given != self.refresh_token and not in_grace
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.refreshes += 1
        if given == self.refresh_token:
            self.rotated[given] = now + self.grace
            self.refresh_token = "RT1-" + uuid.uuid4().hex
        access = "eyJ" + uuid.uuid4().hex
        self.access_tokens[access] = now + 3600
        return web.json_response(
            {
                "token_type": "bearer",
                "access_token": access,
                "expires_in": 3600,
                "refresh_token": self.refresh_token,
                "x_refresh_token_expires_in": 8726400,
            }
        )

    def _admit(self, request: web.Request) -> web.Response | None:
        now = asyncio.get_running_loop().time()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0.0) <= now:
            return _fault(
                401,
                "AUTHENTICATION",
                "3200",
                "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            )
        if request.match_info.get("realm") != self.realm_id:
            return _fault(
                403,
                "AUTHORIZATION",
                "3100",
                "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
            )
        while self.calls and now - self.calls[0] >= 60:
            self.calls.popleft()
        if len(self.calls) >= self.per_minute or self.in_flight >= self.concurrent:
            self.throttled += 1
            return _fault(
                429,
                "SERVICE",
                "3001",
                "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                "The request limit was reached.",
            )
        self.calls.append(now)
        return None

    async def _query(self, request: web.Request) -> web.Response:
        text = " ".join(request.query.get("query", "").split())
        match = _QUERY.match(text)
        if match is None or match[1] not in _BY_PATH.values():
            return _fault(
                400,
                "ValidationFault",
                "4000",
                "Error parsing query",
                f"QueryParserError: {text[:80]}",
            )
        entity = match[1]
        rows = list(self.store[entity].values())
        for condition in (match[2] or "").split(" and ") if match[2] else []:
            found = _CONDITION.match(condition.strip())
            if found is None or found[1] not in _FILTERS:
                return _fault(
                    400,
                    "ValidationFault",
                    "4001",
                    "Invalid query",
                    f"QueryValidationError: property is not queryable: {condition}",
                )
            wanted = re.sub(r"\\(.)", r"\1", found[2])
            rows = [r for r in rows if str(r.get(found[1], "")) == wanted]
        start = int(match[3] or 1)
        size = min(int(match[4] or 100), 1000)
        page = rows[start - 1 : start - 1 + size]
        answer: dict[str, Any] = {}
        if page:
            answer = {entity: page, "startPosition": start, "maxResults": len(page)}
        return _json({"QueryResponse": answer, "time": _now()})

    async def _read(self, request: web.Request) -> web.Response:
        entity = _BY_PATH.get(request.match_info["entity"])
        held = self.store[entity].get(request.match_info["id"]) if entity else None
        if entity is None or held is None:
            return _not_found()
        return _json({entity: held, "time": _now()})

    async def _write(self, request: web.Request) -> web.StreamResponse:
        entity = _BY_PATH.get(request.match_info["entity"])
        if entity is None or entity == "Account":
            return _fault(
                400,
                "ValidationFault",
                "2010",
                "Unsupported Operation",
                f"Operation not supported on {request.match_info['entity']}",
            )
        fault = self._fault()
        if fault == "timeout_before":
            await asyncio.sleep(self.stall)
            return _fault(503, "SERVICE", "10000", "Service Unavailable")
        if fault in ("500", "503"):
            return _fault(int(fault), "SystemFault", "10000", "An application error has occurred")
        if fault == "429":
            return _fault(
                429, "SERVICE", "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429"
            )
        request_id = request.query.get("requestid")
        if request_id and request_id in self.replies:
            status, body = self.replies[request_id]
            return web.Response(status=status, body=body, content_type="application/json")
        if request_id is not None and len(request_id) > 50:
            return _fault(
                400,
                "ValidationFault",
                "2010",
                "Invalid requestid",
                "A requestid has at most 50 characters",
            )
        try:
            data = json.loads(await request.text(), parse_float=Decimal)
            if not isinstance(data, dict):
                raise Refused("2010", "Request has invalid or unsupported property")
            operation = request.query.get("operation", "")
            include = request.query.get("include", "")
            status, reply = 200, self._apply(entity, operation, include, data)
        except ValueError:
            status, reply = _fault_body(
                "ValidationFault", "2020", "Required param missing", "The request body is not JSON"
            )
            status = 400
        except Refused as exc:
            status, reply = (
                400,
                _fault_body("ValidationFault", exc.code, exc.message, exc.detail)[1],
            )
        body = _dumps(reply)
        if request_id:
            self.replies[request_id] = (status, body)
        if fault == "drop" and request.transport is not None:
            request.transport.close()  # applied, but the caller never hears of it
            raise asyncio.CancelledError
        if fault == "timeout":
            await asyncio.sleep(self.stall)  # applied; a caller with a shorter timeout gives up
        return web.Response(status=status, body=body, content_type="application/json")

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

    # ------------------------------------------------------------------ writes

    def _apply(self, entity: str, operation: str, include: str, data: dict[str, Any]) -> Any:
        object_id = data.get("Id")
        if operation in ("delete", "void") or include == "void":
            held = self._current(entity, data)
            if operation == "delete":
                return self._delete(entity, str(object_id), held)
            if (operation, entity) == ("void", "Invoice") or (
                (operation, include, entity) == ("update", "void", "Payment")
            ):
                return self._void(entity, str(object_id), held)
            raise Refused("2010", "Unsupported Operation", f"{operation} is not supported here")
        if operation not in ("", "create", "update"):
            raise Refused("2010", "Unsupported Operation", f"operation={operation}")
        unknown = set(data) - _PROPERTIES[entity] - _COMMON
        if unknown:
            raise Refused(
                "2010",
                "Request has invalid or unsupported property",
                f"Property Name:{sorted(unknown)[0]} specified is unsupported or invalid",
            )
        if object_id is None:
            item = {k: v for k, v in data.items() if k not in _COMMON}
            self._check(entity, item, None)
            new_id = str(self._next_id)
            self._next_id += 1
            stamp = _now()
            item.update(
                Id=new_id,
                SyncToken="0",
                domain="QBO",
                sparse=False,
                MetaData={"CreateTime": stamp, "LastUpdatedTime": stamp},
            )
            self.store[entity][new_id] = item
            self._applied(entity, item, +1)
            self.writes += 1
            return {entity: item, "time": stamp}
        held = self._current(entity, data)
        if (entity, str(object_id)) in self.voided:
            raise _business("A voided transaction cannot be changed.")
        fields = {k: v for k, v in data.items() if k not in _COMMON}
        if data.get("sparse"):
            merged = {**held, **fields}
        else:
            kept = {k: v for k, v in held.items() if k in _COMMON or k in _COMPUTED}
            merged = {**kept, **fields}
        self._applied(entity, held, -1)
        try:
            self._check(entity, merged, held)
        except Refused:
            self._applied(entity, held, +1)
            raise
        self._applied(entity, merged, +1)
        merged["SyncToken"] = str(int(held["SyncToken"]) + 1)
        merged["MetaData"] = {**held.get("MetaData", {}), "LastUpdatedTime": _now()}
        self.store[entity][str(object_id)] = merged
        self.writes += 1
        return {entity: merged, "time": _now()}

    def _current(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        """The object ``data`` names, if its ``SyncToken`` is the current one."""
        held = self.store[entity].get(str(data.get("Id")))
        if held is None:
            raise Refused(
                "610",
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made "
                "inactive. Check the fields with accounts, customers, items, vendors "
                "or employees.",
            )
        if str(data.get("SyncToken")) != held["SyncToken"]:
            raise Refused(
                "5010",
                "Stale Object Error",
                "Stale Object Error : You and another user were working on the same "
                "thing. The other user finished before you did, so your work was not "
                "saved.",
            )
        return held

    def _delete(self, entity: str, object_id: str, held: dict[str, Any]) -> Any:
        if entity == "Invoice" and self._paid(object_id):  # the fake's reading
            raise _business("This invoice has payments applied; remove them first.")
        if (entity, object_id) not in self.voided:
            self._applied(entity, held, -1)
        del self.store[entity][object_id]
        self.voided.discard((entity, object_id))
        self.writes += 1
        return {entity: {"status": "Deleted", "domain": "QBO", "Id": object_id}, "time": _now()}

    def _void(self, entity: str, object_id: str, held: dict[str, Any]) -> Any:
        if entity == "Invoice" and self._paid(object_id):  # the fake's reading
            raise _business("This invoice has payments applied; remove them first.")
        if (entity, object_id) not in self.voided:
            self._applied(entity, held, -1)
            self.voided.add((entity, object_id))
            for line in held.get("Line", []):
                line["Amount"] = Decimal(0)
            held.update(TotalAmt=Decimal(0), PrivateNote="Voided")
            if entity == "Invoice":
                held["Balance"] = Decimal(0)
            held["SyncToken"] = str(int(held["SyncToken"]) + 1)
            self.writes += 1
        return {entity: held, "time": _now()}

    def _paid(self, invoice_id: str) -> Decimal:
        invoice = self.store["Invoice"][invoice_id]
        return Decimal(str(invoice["TotalAmt"])) - Decimal(str(invoice["Balance"]))

    def _applied(self, entity: str, item: dict[str, Any], sign: int) -> None:
        """Apply (``sign`` 1) or take back (-1) a Payment's amounts on its invoices."""
        if entity != "Payment":
            return
        for line in item.get("Line", []):
            for linked in line.get("LinkedTxn", []):
                invoice = self.store["Invoice"].get(str(linked.get("TxnId")))
                if invoice is not None:
                    amount = Decimal(str(line["Amount"]))
                    invoice["Balance"] = Decimal(str(invoice["Balance"])) - sign * amount

    # ------------------------------------------------------------------ QuickBooks' rules

    def _check(self, entity: str, item: dict[str, Any], held: dict[str, Any] | None) -> None:
        getattr(self, f"_check_{entity.lower()}")(item, held)

    def _account(self, ref: Any, types: set[str] | None = None, what: str = "") -> dict[str, Any]:
        value = ref.get("value") if isinstance(ref, dict) else None
        account = self.store["Account"].get(str(value))
        if account is None:
            raise _invalid_reference("Accounts", value)
        if types is not None and account["AccountType"] not in types:
            raise _business(
                f"{what} must be one of {', '.join(sorted(types))} accounts; "
                f"{account['Name']} is {account['AccountType']}."
            )
        return account

    def _customer(self, ref: Any) -> str:
        value = str(ref.get("value")) if isinstance(ref, dict) else None
        if value not in self.store["Customer"]:
            raise _invalid_reference("Customer", value)
        return value

    def _amount(self, value: Any, currency: str, places: int | None = None) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise Refused(
                "2020",
                "Required param missing, need to supply the required value",
                f"Amount is missing or not a number: {value!r}",
            )
        amount = Decimal(value)
        allowed = exponent(currency) if places is None else places
        digits = amount.as_tuple().exponent
        if not isinstance(digits, int) or -digits > allowed:
            raise _business(f"Amount {amount} has more decimal places than {currency} allows.")
        return amount

    @staticmethod
    def _currency(item: dict[str, Any]) -> str:
        return str((item.get("CurrencyRef") or {}).get("value") or "USD")

    def _lines(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        lines = item.get("Line")
        if not isinstance(lines, list) or not lines:
            raise Refused(
                "2020",
                "Required param missing, need to supply the required value",
                "Required parameter Line is missing in the request",
            )
        return lines

    def _check_customer(self, item: dict[str, Any], held: Any) -> None:
        name = item.get("DisplayName")
        if not name:
            raise Refused("2020", "Required param missing", "DisplayName is required")
        for other in self.store["Customer"].values():
            if other["DisplayName"] == name and other is not held:
                raise Refused(
                    "6240",
                    "Duplicate Name Exists Error",
                    "The name supplied already exists. : Another customer, vendor or "
                    "employee is already using this name. Please use a different "
                    "name.",
                )

    def _check_item(self, item: dict[str, Any], held: Any) -> None:
        name = str(item.get("Name") or "")
        if not name or ":" in name:
            raise Refused("2050", "Invalid String", "Name is required and may not contain ':'")
        if item.get("Type") != "Service":
            raise _business("Only Service items are accepted here.")
        account = self._account(item.get("IncomeAccountRef"))
        if account["AccountType"] in (RECEIVABLE, "Bank"):
            raise _business(f"An item's income account cannot be {account['AccountType']}.")
        for other in self.store["Item"].values():
            if other["Name"] == name and other is not held:
                raise Refused(
                    "6240", "Duplicate Name Exists Error", "The name supplied already exists."
                )

    def _sales_lines(self, item: dict[str, Any]) -> Decimal:
        currency = self._currency(item)
        total = Decimal(0)
        for line in self._lines(item):
            kind = line.get("DetailType")
            amount = self._amount(line.get("Amount"), currency)
            if kind == "SalesItemLineDetail":
                detail = line.get("SalesItemLineDetail") or {}
                ref = (detail.get("ItemRef") or {}).get("value")
                if str(ref) not in self.store["Item"]:
                    raise _invalid_reference("Item", ref)
                quantity = Decimal(str(detail.get("Qty", 1)))
                price = self._amount(detail.get("UnitPrice", amount), currency)
                if quantity * price != amount:
                    raise _business("Amount is not equal to UnitPrice * Qty.")
                total += amount
            elif kind == "DiscountLineDetail":
                detail = line.get("DiscountLineDetail") or {}
                self._account(detail.get("DiscountAccountRef"))
                if amount < 0:
                    raise _business("A discount amount cannot be negative.")
                total -= amount
            else:
                raise Refused(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"DetailType {kind!r} is not supported on this entity",
                )
        return total

    def _check_invoice(self, item: dict[str, Any], held: Any) -> None:
        self._customer(item.get("CustomerRef"))
        total = self._sales_lines(item)
        if total < 0:
            raise _business("The total of an invoice cannot be negative.")
        paid = self._paid(held["Id"]) if held else Decimal(0)
        if total < paid:  # the fake's reading
            raise _business("The invoice total is less than the payments applied to it.")
        number = item.get("DocNumber")
        if number and any(
            i.get("DocNumber") == number and i.get("Id") != (held or {}).get("Id")
            for i in self.live("Invoice")
        ):
            raise Refused(
                "6140",
                "Duplicate Document Number Error",
                f"Duplicate Document Number Error : You must specify a different "
                f"number. This number has already been used. DocNumber={number}",
            )
        item.update(TotalAmt=total, Balance=total - paid)

    def _check_payment(self, item: dict[str, Any], held: Any) -> None:
        customer = self._customer(item.get("CustomerRef"))
        currency = self._currency(item)
        self._account(item.get("DepositToAccountRef"), _DEPOSIT_TO, "DepositToAccountRef")
        total = self._amount(item.get("TotalAmt"), currency)
        applied = Decimal(0)
        for line in self._lines(item):
            amount = self._amount(line.get("Amount"), currency)
            for linked in line.get("LinkedTxn") or []:
                invoice_id = str(linked.get("TxnId"))
                invoice = self.store["Invoice"].get(invoice_id)
                if linked.get("TxnType") != "Invoice" or invoice is None:
                    raise _invalid_reference("Invoice", invoice_id)
                if ("Invoice", invoice_id) in self.voided:
                    raise _business("You cannot apply a payment to a voided invoice.")
                if invoice["CustomerRef"]["value"] != customer:
                    raise _business("The payment's customer is not the invoice's customer.")
                if amount > Decimal(str(invoice["Balance"])):  # the fake's reading
                    raise _business("The payment amount is more than the invoice's open balance.")
            applied += amount
        if total <= 0 or applied > total:
            raise _business("A payment's total must be positive and cover its lines.")

    def _check_purchase(self, item: dict[str, Any], held: Any) -> None:
        if item.get("PaymentType") not in ("Cash", "Check", "CreditCard"):
            raise Refused("2020", "Required param missing", "PaymentType is required")
        self._account(item.get("AccountRef"), _PAY_FROM, "AccountRef")
        currency, total = self._currency(item), Decimal(0)
        for line in self._lines(item):
            if line.get("DetailType") != "AccountBasedExpenseLineDetail":
                raise Refused(
                    "2010",
                    "Request has invalid or unsupported property",
                    "Only AccountBasedExpenseLineDetail lines are accepted here",
                )
            detail = line.get("AccountBasedExpenseLineDetail") or {}
            if self._account(detail.get("AccountRef"))["AccountType"] == RECEIVABLE:
                raise _business(_AR_NEEDS_CUSTOMER.removeprefix("Business Validation Error: "))
            total += self._amount(line.get("Amount"), currency)
        if total <= 0:
            raise _business("The total of an expense must be greater than zero.")
        item["TotalAmt"] = total

    def _check_deposit(self, item: dict[str, Any], held: Any) -> None:
        self._account(item.get("DepositToAccountRef"), _DEPOSIT_TO, "DepositToAccountRef")
        currency, total = self._currency(item), Decimal(0)
        for line in self._lines(item):
            if line.get("DetailType") != "DepositLineDetail":
                raise Refused(
                    "2010",
                    "Request has invalid or unsupported property",
                    "Only DepositLineDetail lines are accepted here",
                )
            detail = line.get("DepositLineDetail") or {}
            account = self._account(detail.get("AccountRef"))
            if account["AccountType"] == RECEIVABLE:
                entity = detail.get("Entity") or {}
                if str(entity.get("type", "")).lower() != "customer":
                    raise _business(_AR_NEEDS_CUSTOMER.removeprefix("Business Validation Error: "))
                self._customer(entity)
            total += self._amount(line.get("Amount"), currency)
        if total <= 0:
            raise _business("The total of a deposit must be greater than zero.")
        item["TotalAmt"] = total

    def _check_transfer(self, item: dict[str, Any], held: Any) -> None:
        source = self._account(item.get("FromAccountRef"), _DEPOSIT_TO, "FromAccountRef")
        destination = self._account(item.get("ToAccountRef"), _DEPOSIT_TO, "ToAccountRef")
        if source is destination:
            raise _business("The from and to accounts of a transfer must be different.")
        if self._amount(item.get("Amount"), "USD", places=3) <= 0:
            raise _business("The amount of a transfer must be greater than zero.")

    def _check_refundreceipt(self, item: dict[str, Any], held: Any) -> None:
        self._customer(item.get("CustomerRef"))
        self._account(item.get("DepositToAccountRef"), _DEPOSIT_TO, "DepositToAccountRef")
        total = self._sales_lines(item)
        if total <= 0:
            raise _business("The total of a refund receipt must be greater than zero.")
        item["TotalAmt"] = total

    def _check_journalentry(self, item: dict[str, Any], held: Any) -> None:
        currency = self._currency(item)
        debits, credits = Decimal(0), Decimal(0)
        for line in self._lines(item):
            detail = line.get("JournalEntryLineDetail") or {}
            if line.get("DetailType") != "JournalEntryLineDetail":
                raise Refused(
                    "2010",
                    "Request has invalid or unsupported property",
                    "Only JournalEntryLineDetail lines are accepted here",
                )
            account = self._account(detail.get("AccountRef"))
            if account["AccountType"] == RECEIVABLE:
                entity = detail.get("Entity") or {}
                if entity.get("Type") != "Customer":
                    raise _business(_AR_NEEDS_CUSTOMER.removeprefix("Business Validation Error: "))
                self._customer(entity.get("EntityRef"))
            amount = self._amount(line.get("Amount"), currency)
            if amount < 0:
                raise _business("A journal line amount cannot be negative.")
            posting = detail.get("PostingType")
            if posting == "Debit":
                debits += amount
            elif posting == "Credit":
                credits += amount
            else:
                raise Refused("2020", "Required param missing", "PostingType is required")
        if debits != credits:
            raise _business("Journal Entry is out of balance by " + str(debits - credits))
        item["TotalAmt"] = debits


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_NUMBER = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def _dumps(value: Any) -> bytes:
    """JSON with each ``Decimal`` an exact number, as QuickBooks answers."""

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"\x00dec:{obj}"
        return str(obj)

    return _NUMBER.sub(r"\1", orjson.dumps(value, default=default).decode()).encode()


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_dumps(value), content_type="application/json")


def _fault_body(kind: str, code: str, message: str, detail: str = "") -> tuple[int, Any]:
    error: dict[str, str] = {"Message": message, "code": code}
    if detail:
        error["Detail"] = detail
    return 400, {"Fault": {"Error": [error], "type": kind}, "time": _now()}


def _fault(status: int, kind: str, code: str, message: str, detail: str = "") -> web.Response:
    return _json(_fault_body(kind, code, message, detail)[1], status)


def _not_found() -> web.Response:
    return _fault(
        400,
        "ValidationFault",
        "610",
        "Object Not Found",
        "Object Not Found : Something you're trying to use has been made inactive. "
        "Check the fields with accounts, customers, items, vendors or employees.",
    )


@contextlib.asynccontextmanager
async def serve(fake: FakeQuickBooks) -> AsyncIterator[FakeQuickBooks]:
    """Run ``fake`` on a free port of 127.0.0.1 for the generator's life."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
