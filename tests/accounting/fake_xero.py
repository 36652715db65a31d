"""A local Xero-compatible server (aiohttp on 127.0.0.1) for the Xero target's tests.

It behaves like Xero where the target relies on it: OAuth2 refresh-token grant with rotation (a
used refresh token stays usable for Xero's 30-minute grace period, in case its answer was lost,
then is dead), bearer tokens and ``xero-tenant-id`` checked; ManualJournals,
Invoices, Payments, BankTransactions, BankTransfers and Contacts (``PUT`` creates, ``POST
…/{id}`` updates, voids or deletes, ``GET`` lists in pages of 100 with ``InvoiceNumbers`` and
``where=Name=="…"`` or ``Field.Contains("…")``), every request body validated against the spec's
schema for its endpoint (``../shared/reference/xero/``, jsonschema); Xero's rules refused with a
400 ``ValidationException`` (``Elements[].ValidationErrors[].Message``): unknown account codes,
non-bank accounts as bank accounts, journals that do not balance, unknown contacts, duplicate
contact names and invoice numbers, a payment over the invoice's amount due, editing or voiding a
paid invoice; payments mark invoices ``PAID``; ``Idempotency-Key`` honoured per endpoint (a
repeated key answers the first response); 5 concurrent and 60 calls a minute enforced with 429 +
``Retry-After``; and faults injected on demand (the ``faults`` deque) or at random
(``fault_rate`` of the write calls, kinds drawn from ``fault_kinds`` by ``random``, seeded):
``500``, ``429``, ``drop`` (the write is applied, then the connection is cut), ``timeout`` (the
write is applied, then the server stalls ``stall`` seconds before answering), ``timeout_before``
(stalls without applying). ``injected`` counts the faults by kind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import yaml
from aiohttp import web

SPEC = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "xero" / "xero_accounting.yaml"
)
"""Xero's OpenAPI spec (XeroAPI/Xero-OpenAPI, MIT), beside the repository."""
SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "accounting_schemas.json"
"""The spec's schemas the fake validates with, copied into the repository so the tests run from
any checkout (``python -m tests.accounting.fake_xero`` writes it again from ``SPEC``)."""


_SCHEMAS = {
    ("PUT", "ManualJournals"): "ManualJournals",
    ("POST", "ManualJournals"): "ManualJournals",
    ("PUT", "Invoices"): "Invoices",
    ("POST", "Invoices"): "Invoices",
    ("PUT", "Payments"): "Payments",
    ("POST", "Payments"): "PaymentDelete",
    ("PUT", "BankTransactions"): "BankTransactions",
    ("POST", "BankTransactions"): "BankTransactions",
    ("PUT", "BankTransfers"): "BankTransfers",
    ("POST", "BankTransfers"): "BankTransferDeleteByUrlParam",
    ("PUT", "Contacts"): "Contacts",
    ("POST", "Contacts"): "Contacts",
}
"""(method, collection) → the spec's request body schema (``POST …/{id}`` for the POSTs)."""
ID_FIELD = {
    "ManualJournals": "ManualJournalID",
    "Invoices": "InvoiceID",
    "Payments": "PaymentID",
    "BankTransactions": "BankTransactionID",
    "BankTransfers": "BankTransferID",
    "Contacts": "ContactID",
}
_PAGE = 100
_CONTAINS = re.compile(r'^(\w+)\.Contains\("([^"\\]*)"\)$')
_TAG = re.compile(r"\[(lh-[0-9a-f]+) ([0-9a-f]{64})( fee)?\]$")
_NAME = re.compile(r'^Name=="((?:[^"\\]|\\.)*)"$')


REFRESH_GRACE = 30 * 60
"""Seconds a used refresh token still works (Xero: "you can retry refreshing the old token for
a grace period of 30 minutes")."""


def extract_schemas(spec_text: str) -> dict[str, Any]:
    """The request-body schemas the fake validates with, and every schema they refer to, from
    the spec's YAML (dates in examples as strings, so the result is plain JSON)."""
    spec = yaml.load(spec_text, Loader=yaml.CSafeLoader)
    schemas = spec["components"]["schemas"]
    kept: dict[str, Any] = {}
    todo = sorted(set(_SCHEMAS.values()))
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        kept[name] = orjson.loads(orjson.dumps(schemas[name], default=str))
        todo.extend(re.findall(r"#/components/schemas/(\w+)", orjson.dumps(kept[name]).decode()))
    return {"components": {"schemas": dict(sorted(kept.items()))}}


@cache
def _components() -> dict[str, Any]:
    return dict(orjson.loads(SCHEMAS.read_bytes())["components"])


def validate(body: Any, schema: str = "ManualJournals") -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` fits the spec's ``schema``."""
    jsonschema.validate(
        body, {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    )


class Refused(Exception):
    """A Xero ``ValidationException`` (400) with its message."""


class FakeXero:
    """State and faults of the fake; ``url`` once started.

    ``store[collection]`` holds each collection's objects by id (``journals`` is the
    ManualJournals one); ``accounts`` are the chart's codes, ``bank_accounts`` (default: all of
    them) the ones that are Xero bank accounts.
    """

    fault_kinds: tuple[str, ...] = ("500", "429", "timeout", "drop")

    def __init__(
        self,
        accounts: set[str],
        refresh_token: str,
        tenant_id: str,
        *,
        seed: int = 0,
        bank_accounts: set[str] | None = None,
    ) -> None:
        self.accounts = accounts
        self.bank_accounts = bank_accounts
        self.refresh_token = refresh_token
        self.tenant_id = tenant_id
        self.access_tokens: set[str] = set()
        self.store: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in ID_FIELD}
        self.journals = self.store["ManualJournals"]
        self.replies: dict[tuple[str, str, str], tuple[int, bytes]] = {}
        self.faults: deque[str] = deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: deque[float] = deque()
        self.refreshes = 0
        self.rotated: dict[str, float] = {}
        self.correlation_ids: list[str] = []
        """The ``Xero-Correlation-Id`` of every API response, in order."""
        """Refresh tokens already used → when their grace period ends (loop time)."""
        self.latency = 0.0
        self.writes = 0
        self.url = ""
        self.stall = 5.0
        self.fault_rate = 0.0
        self.random = random.Random(seed)
        self.injected: collections.Counter[str] = collections.Counter()

    def live(self, collection: str) -> list[dict[str, Any]]:
        """The collection's objects that are not voided or deleted."""
        return [
            o
            for o in self.store[collection].values()
            if o.get("Status") not in ("VOIDED", "DELETED")
        ]

    def live_tags(self) -> list[tuple[str, str, str]]:
        """(idempotency key, content hash, part: ``""`` or ``"fee"``) of every live object
        ledgerhub wrote, whatever its type (the tag ending its Reference or Narration)."""
        found = []
        for collection in ID_FIELD:
            for item in self.live(collection):
                text = item.get("Narration" if collection == "ManualJournals" else "Reference")
                tag = _TAG.search(text or "")
                if tag is not None:
                    found.append((tag[1], tag[2], (tag[3] or "").strip()))
        return found

    def live_keys(self) -> list[str]:
        """The idempotency key of every live document ledgerhub wrote (a payment's fee
        ``SPEND`` is part of its payment, not counted again)."""
        return [key for key, _, part in self.live_tags() if not part]

    def app(self) -> web.Application:
        @web.middleware
        async def correlated(request: web.Request, handler: Any) -> web.StreamResponse:
            response: web.StreamResponse = await handler(request)
            if request.path.startswith("/api.xro/"):  # Xero names every API response
                response.headers["Xero-Correlation-Id"] = correlation = str(uuid.uuid4())
                self.correlation_ids.append(correlation)
            return response

        app = web.Application(middlewares=[correlated])
        app.router.add_post("/connect/token", self._token)
        app.router.add_get("/api.xro/2.0/Organisation", self._organisation)
        for collection in ID_FIELD:
            base = f"/api.xro/2.0/{collection}"
            app.router.add_get(base, self._list)
            app.router.add_get(base + "/{id}", self._list)
            app.router.add_put(base, self._write)
            app.router.add_post(base + "/{id}", self._write)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("refresh_token")
        now = asyncio.get_running_loop().time()
        in_grace = given in self.rotated and now < self.rotated[str(given)]
        if form.get("grant_type") != "refresh_token" or (
            given != self.refresh_token and not in_grace
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.refreshes += 1
        if given == self.refresh_token:  # rotation: the old one lives on for the grace period
            self.rotated[self.refresh_token] = now + REFRESH_GRACE
            self.refresh_token = uuid.uuid4().hex
        access = uuid.uuid4().hex
        self.access_tokens = {access}
        return web.json_response(
            {"access_token": access, "refresh_token": self.refresh_token, "expires_in": 1800}
        )

    def _admit(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.access_tokens:
            return web.json_response({"Title": "Unauthorized"}, status=401)
        if request.headers.get("xero-tenant-id") != self.tenant_id:
            return web.json_response({"Title": "Forbidden"}, status=403)
        now = asyncio.get_running_loop().time()
        while self.calls and now - self.calls[0] >= 60:
            self.calls.popleft()
        if len(self.calls) >= 60 or self.in_flight >= 5:
            return web.Response(status=429, headers={"Retry-After": "1"})
        self.calls.append(now)
        return None

    async def _organisation(self, request: web.Request) -> web.Response:
        """``GET /Organisation``: the connected organisation (what a health check reads)."""
        refused = self._admit(request)
        if refused is not None:
            return refused
        return _json({"Organisations": [{"OrganisationID": self.tenant_id, "Name": "Demo"}]})

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        collection = request.path.split("/")[3]
        items = list(self.store[collection].values())
        one = request.match_info.get("id")
        if one is not None:
            if one not in self.store[collection]:
                return web.json_response({"Title": "Not found"}, status=404)
            return _json({collection: [self.store[collection][one]]})
        numbers = request.query.get("InvoiceNumbers")
        if numbers is not None:
            wanted = set(numbers.split(","))
            items = [i for i in items if i.get("InvoiceNumber") in wanted]
        where = request.query.get("where")
        if where is not None:
            name, contains = _NAME.match(where), _CONTAINS.match(where)
            assert name or contains, f"the fake knows no filter {where!r}"
            if name is not None:
                wanted_name = re.sub(r"\\(.)", r"\1", name[1])
                items = [i for i in items if i.get("Name") == wanted_name]
            elif contains is not None:
                items = [i for i in items if contains[2] in str(i.get(contains[1], ""))]
        page = int(request.query.get("page", "1"))
        items = items[(page - 1) * _PAGE : page * _PAGE]
        return _json({"Id": str(uuid.uuid4()), "Status": "OK", collection: items})

    async def _write(self, request: web.Request) -> web.StreamResponse:
        refused = self._admit(request)
        if refused is not None:
            return refused
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)  # a real server takes a while
            return await self._apply(request)
        finally:
            self.in_flight -= 1

    async def _apply(self, request: web.Request) -> web.StreamResponse:
        fault = self._fault()
        if fault == "timeout_before":
            await asyncio.sleep(self.stall)
            return web.json_response({"Title": "Internal error"}, status=500)
        if fault == "500":
            return web.json_response({"Title": "Internal error"}, status=500)
        if fault == "429":
            return web.Response(status=429, headers={"Retry-After": "0.01"})
        collection = request.path.split("/")[3]
        key = request.headers.get("Idempotency-Key")
        scope = (request.method, request.path, key or "")
        if key and scope in self.replies:
            status, body = self.replies[scope]
            return web.Response(status=status, body=body, content_type="application/json")
        text = await request.text()
        try:
            validate(orjson.loads(text), _SCHEMAS[(request.method, collection)])
        except orjson.JSONDecodeError:
            return _invalid("the body is not JSON")
        except jsonschema.ValidationError as exc:
            return _invalid(f"the body does not match the spec: {exc.message}")
        data = json.loads(text, parse_float=Decimal)
        target = request.match_info.get("id")
        if target is not None and target not in self.store[collection]:
            status, reply = 404, {"Title": "Not found"}
        else:
            try:
                status, reply = 200, self._store(collection, data, target)
            except Refused as exc:
                status, reply = _refusal(str(exc))
        body = _dumps(reply)
        if key:
            self.replies[scope] = (status, body)
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

    # what Xero checks and does, per collection ---------------------------------------------

    def _store(self, collection: str, data: dict[str, Any], target: str | None) -> Any:
        if collection in ("Payments", "BankTransfers") and target is not None:
            held = self.store[collection][target]  # {"Status": "DELETED"}
            if held.get("Status") != "DELETED":
                if collection == "Payments":
                    self._unapply(held)
                held["Status"] = "DELETED"
                self.writes += 1
            return {collection: [held]}
        item = data[collection][0]
        check = getattr(self, f"_check_{collection.lower()}")
        if target is not None:
            held = self.store[collection][target]
            status = item.get("Status")
            if status in ("VOIDED", "DELETED"):
                check(item, held, void=True)
                held["Status"] = status
                return {collection: [held]}
            merged = {**held, **item}
            check(merged, held, void=False)
            self.store[collection][target] = merged
        else:
            check(item, None, void=False)
            target = str(uuid.uuid4())
            self.store[collection][target] = {**item, ID_FIELD[collection]: target}
        self.writes += 1
        return {collection: [self.store[collection][target]]}

    def _account(self, code: str, *, bank: bool = False) -> None:
        if code not in self.accounts:
            raise Refused(f"Account code '{code}' is not a valid code for this document.")
        if bank and self.bank_accounts is not None and code not in self.bank_accounts:
            raise Refused(f"Account code '{code}' is not a bank account.")

    def _lines(self, lines: list[dict[str, Any]]) -> Decimal:
        for line in lines:
            self._account(line.get("AccountCode", ""))
        return sum((Decimal(str(line["LineAmount"])) for line in lines), Decimal(0))

    def _contact(self, item: dict[str, Any]) -> None:
        contact = item.get("Contact") or {}
        if contact.get("ContactID") not in self.store["Contacts"]:
            raise Refused("A valid contact is required (ContactID not found).")

    def _check_manualjournals(self, item: dict[str, Any], held: Any, *, void: bool) -> None:
        if void:
            return
        lines = item.get("JournalLines", [])
        if sum(Decimal(str(line["LineAmount"])) for line in lines) != 0:
            raise Refused("The total debits must equal the total credits")
        self._lines(lines)

    def _check_contacts(self, item: dict[str, Any], held: Any, *, void: bool) -> None:
        name = item.get("Name")
        if not name:
            raise Refused("The contact name must be specified.")
        for other in self.store["Contacts"].values():
            if other["Name"] == name and other is not held:
                raise Refused(f"The contact name {name} is already assigned to another contact.")

    def _check_invoices(self, item: dict[str, Any], held: Any, *, void: bool) -> None:
        paid = Decimal(str(held.get("AmountPaid", 0))) if held else Decimal(0)
        if void:
            if paid:
                raise Refused("Invoice cannot be voided as it has payments applied.")
            return
        if paid:
            raise Refused("This document cannot be edited as it has a payment allocated to it.")
        if item.get("Type") != "ACCREC" or item.get("Status") not in ("DRAFT", "AUTHORISED"):
            raise Refused("Only ACCREC invoices in DRAFT or AUTHORISED are accepted here.")
        self._contact(item)
        total = self._lines(item.get("LineItems", []))
        if total < 0:
            raise Refused("The total of an invoice cannot be negative.")
        number = item.get("InvoiceNumber")
        if number and any(
            i.get("InvoiceNumber") == number and i is not held for i in self.live("Invoices")
        ):
            raise Refused("Invoice # must be unique.")
        item.update(Total=total, AmountDue=total, AmountPaid=Decimal(0))

    def _check_payments(self, item: dict[str, Any], held: Any, *, void: bool) -> None:
        self._account((item.get("Account") or {}).get("Code", ""), bank=True)
        invoice_id = (item.get("Invoice") or {}).get("InvoiceID")
        invoice = self.store["Invoices"].get(invoice_id or "")
        if invoice is None or invoice.get("Status") not in ("AUTHORISED", "PAID"):
            raise Refused("Invoice could not be found or is not AUTHORISED.")
        amount = Decimal(str(item.get("Amount", 0)))
        if amount <= 0:
            raise Refused("Payment amount must be greater than zero.")
        if amount > Decimal(str(invoice["AmountDue"])):
            raise Refused("Payment amount exceeds the amount outstanding on this document.")
        invoice["AmountPaid"] = Decimal(str(invoice["AmountPaid"])) + amount
        invoice["AmountDue"] = Decimal(str(invoice["AmountDue"])) - amount
        if invoice["AmountDue"] == 0:
            invoice["Status"] = "PAID"
        item.update(Status="AUTHORISED", PaymentType="ACCRECPAYMENT")

    def _unapply(self, payment: dict[str, Any]) -> None:
        invoice = self.store["Invoices"][payment["Invoice"]["InvoiceID"]]
        amount = Decimal(str(payment["Amount"]))
        invoice["AmountPaid"] = Decimal(str(invoice["AmountPaid"])) - amount
        invoice["AmountDue"] = Decimal(str(invoice["AmountDue"])) + amount
        invoice["Status"] = "AUTHORISED"

    def _check_banktransactions(self, item: dict[str, Any], held: Any, *, void: bool) -> None:
        if void:
            return
        if item.get("Type") not in ("RECEIVE", "SPEND"):
            raise Refused("Only RECEIVE and SPEND bank transactions are accepted here.")
        self._account(item["BankAccount"].get("Code", ""), bank=True)
        self._contact(item)
        total = self._lines(item.get("LineItems", []))
        if total <= 0:
            raise Refused("The total of a bank transaction must be greater than zero.")
        item.update(Total=total, Status=item.get("Status", "AUTHORISED"))

    def _check_banktransfers(self, item: dict[str, Any], held: Any, *, void: bool) -> None:
        source = item["FromBankAccount"].get("Code", "")
        destination = item["ToBankAccount"].get("Code", "")
        self._account(source, bank=True)
        self._account(destination, bank=True)
        if source == destination:
            raise Refused("The from and to bank accounts must be different.")
        if Decimal(str(item["Amount"])) <= 0:
            raise Refused("The amount of a bank transfer must be greater than zero.")
        item.setdefault("Status", "AUTHORISED")


_NUMBER = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def _dumps(value: Any) -> bytes:
    """JSON with each ``Decimal`` an exact number, as Xero answers."""

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"\x00dec:{obj}"
        return str(obj)

    return _NUMBER.sub(r"\1", orjson.dumps(value, default=default).decode()).encode()


def _json(value: Any) -> web.Response:
    return web.Response(body=_dumps(value), content_type="application/json")


def _refusal(message: str) -> tuple[int, Any]:
    return 400, {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }


def _invalid(message: str) -> web.Response:
    status, body = _refusal(message)
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


@contextlib.asynccontextmanager
async def serve(fake: FakeXero) -> AsyncIterator[FakeXero]:
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


if __name__ == "__main__":
    SCHEMAS.write_bytes(
        orjson.dumps(extract_schemas(SPEC.read_text(encoding="utf-8")), option=orjson.OPT_INDENT_2)
        + b"\n"
    )
