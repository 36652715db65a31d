"""``QuickBooksTarget``: each document as the QuickBooks Online entity a bookkeeper expects
(``shapes``), through the Accounting API v3 (``{api}/company/{realm}/…``).

A target id names the entity: ``Invoice/<Id>``, ``Deposit/<Id>``, …; a payment with a fee is
two entities, ``Payment/<Id>+Purchase/<Id>``, a journal in several currencies one JournalEntry
per currency, ``JournalEntry/<Id>+JournalEntry/<Id>``.

- Every call carries ``minorversion``; every write a ``requestid`` (at most 50 characters,
  unique per company): a create is keyed by the document's idempotency key (a part by the key
  and the part), so a create QuickBooks already applied (its answer lost to a timeout or a
  dropped connection) is answered with the first response, not written twice. A refused
  create is tried once more under a ``requestid`` of its content (the refusal may be the
  replay of an earlier version's).
- Chart accounts are QuickBooks Accounts of the same number (``AcctNum``), else of the same
  name; an account QuickBooks does not have refuses the document before anything is written.
  Customers (by ``DisplayName``) and the Service items of income accounts (by ``Name``) are
  queried first and created once.
- update: in place (the entity read for its ``SyncToken``, then a full update; a
  ``Stale Object Error``, code 5010, reads it again) for one-entity shapes whose entity is
  unchanged; otherwise (payments, several currencies, a changed entity) the old entities are
  voided and the document created again under a revised idempotency key (derived from the old
  target id, ``Document.replacing``), which the receipt carries (``Receipt.idempotency_key``)
  so the sender records it.
- void: Invoices and Payments are voided (``operation=void``; a Payment ``operation=update``
  with ``include=void``), the other entities deleted (``operation=delete``: QuickBooks voids
  only those two); voiding something already gone is a no-op.
- held: every entity of the seven types whose ``PrivateNote`` ends with a ``[KEY HASH]`` tag.
- a ``balance`` document (a bank statement's balance) is skipped: QuickBooks has no balance
  assertion (``NOT_SENT``).

``Receipt.request_id`` is Intuit's ``intuit_tid`` of the (last) write, for the call log.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

import orjson

from connectors.quickbooks import shapes
from connectors.quickbooks.auth import Tokens
from connectors.quickbooks.limits import Limits
from connectors.quickbooks.settings import API, MINOR_VERSION
from connectors.quickbooks.shapes import ENTITY, TAG, Refs, Shape
from connectors.quickbooks.transport import (
    NOT_FOUND,
    STALE_OBJECT,
    Fault,
    Response,
    Transport,
    body,
    checked,
)
from hub.domain.documents import BALANCE, Document
from hub.errors import TargetRejected, TargetUnavailable
from hub.spi.target import NOT_SENT, HeldDocument, Receipt

if TYPE_CHECKING:
    from hub.spi.config import Account

_IN_PLACE = {"invoice", "deposit", "purchase", "transfer", "refund", "journal"}
"""Shapes updated in place when the held entity is of the same type (a Payment is voided and
made again: its invoice links would otherwise have to be re-applied)."""
_VOIDABLE = {"Invoice", "Payment"}
"""Entities QuickBooks voids (the others can only be deleted)."""
_PAGE = 1000
_STALE_TRIES = 3


@dataclasses.dataclass(frozen=True)
class _Written:
    """One entity written: its ``Entity/Id`` and the call's ``intuit_tid``."""

    target_id: str
    tid: str


class QuickBooksTarget:
    """One QuickBooks Online company (``realm_id``) as the target of one ledgerhub tenant.

    ``accounts`` is the tenant's chart (code → account with its role); without it every
    document is a JournalEntry (and chart codes must be QuickBooks account numbers).
    """

    name: ClassVar[str] = "quickbooks"
    supports_update: ClassVar[bool] = True

    def __init__(
        self,
        transport: Transport,
        tokens: Tokens,
        realm_id: str,
        *,
        api: str = API,
        minor_version: int = MINOR_VERSION,
        limits: Limits | None = None,
        accounts: Mapping[str, Account] | None = None,
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.realm_id = realm_id
        self.api = api.rstrip("/")
        self.minor_version = minor_version
        self.limits = limits or Limits()
        self.accounts = accounts
        self._receivable = shapes.receivables(accounts)
        self._account_ids: dict[str, str] | None = None
        self._account_names: dict[str, str] = {}
        self._customers: dict[str, str] = {}
        self._items: dict[str, str] = {}

    # ------------------------------------------------------------------ the Target protocol

    async def create(self, document: Document) -> Receipt:
        """Write the document as its QuickBooks entity (or entities), under its idempotency
        key; a create QuickBooks already applied answers with the entity it holds."""
        if document.kind == BALANCE:
            return Receipt(NOT_SENT, f"qbo-not-sent-{document.idempotency_key}")
        chosen = shapes.shape(document, self.accounts)
        made = await self._create(document, chosen)
        return Receipt("+".join(w.target_id for w in made), _tid(made, document))

    async def update(self, target_id: str, document: Document) -> Receipt:
        """In place where the held entity is of the same type, else void and create again
        under a revised idempotency key."""
        if document.kind == BALANCE:
            return Receipt(NOT_SENT, f"qbo-not-sent-{document.idempotency_key}")
        chosen = shapes.shape(document, self.accounts)
        parts = _parts(target_id)
        single = len(parts) == 1 and len(shapes.journal_parts(document)) == 1
        if single and chosen.kind in _IN_PLACE and parts[0][0] == ENTITY[chosen.kind]:
            written = await self._update(parts[0], document, chosen)
            if written is not None:
                return Receipt(target_id, written.tid)
        await self.void(target_id)
        fresh = document.replacing(target_id)
        receipt = await self.create(fresh)
        return dataclasses.replace(receipt, idempotency_key=fresh.idempotency_key)

    async def void(self, target_id: str) -> Receipt:
        """Void (Invoices, Payments) or delete (the other entities) every entity of
        ``target_id``; an entity already voided or deleted is left as it is."""
        if target_id == NOT_SENT:
            return Receipt(NOT_SENT, "qbo-not-sent")
        tid = ""
        for entity, object_id in _parts(target_id):
            tid = await self._void(entity, object_id) or tid
        return Receipt(target_id, tid or f"qbo-void-{target_id}")

    async def held(self) -> list[HeldDocument]:
        """ledgerhub's live entities, found by the tag ending their ``PrivateNote``."""
        main: dict[str, tuple[str, str]] = {}
        extra: dict[str, list[tuple[str, str]]] = {}
        for entity in shapes.ENTITIES:
            for item in await self._query_all(f"select * from {entity}"):
                tag = TAG.search(str(item.get("PrivateNote") or ""))
                if tag is None or _voided(entity, item):
                    continue
                target_id = f"{entity}/{item['Id']}"
                if tag[3]:
                    extra.setdefault(tag[1], []).append((tag[3], target_id))
                else:
                    main[tag[1]] = (target_id, tag[2])
        return [
            HeldDocument(
                key,
                "+".join([target_id, *(t for _, t in sorted(extra.get(key, [])))]),
                content_hash,
            )
            for key, (target_id, content_hash) in sorted(main.items())
        ]

    # ------------------------------------------------------------------ create

    async def _create(self, document: Document, chosen: Shape) -> list[_Written]:
        key = document.idempotency_key
        refs = await self._refs(document, chosen)
        if chosen.kind == "journal":
            return [
                await self._made(
                    "JournalEntry",
                    shapes.journal(document, currency, part, refs, self._receivable),
                    f"{key}-{part}" if part else key,
                    document,
                )
                for currency, part in shapes.journal_parts(document)
            ]
        if chosen.kind == "payment":
            return await self._payment(document, chosen, refs)
        if chosen.kind == "invoice":
            made = shapes.invoice(document, chosen, refs)
        elif chosen.kind == "deposit":
            made = shapes.deposit(document, chosen, refs, self._receivable)
        elif chosen.kind == "purchase":
            made = shapes.purchase(document, chosen, refs, chosen.lines)
        elif chosen.kind == "transfer":
            made = shapes.transfer(document, chosen, refs)
        else:
            made = shapes.refund(document, chosen, refs)
        return [await self._made(ENTITY[chosen.kind], made, key, document)]

    async def _payment(self, document: Document, chosen: Shape, refs: Refs) -> list[_Written]:
        """A Payment applied to the order's Invoice and its fee Purchase; a Deposit when the
        Invoice is not in QuickBooks."""
        key = document.idempotency_key
        found = await self._invoice(chosen.order) if chosen.order else None
        if found is not None:
            # a Deposit written before the invoice was there (its answer lost) is this document
            earlier = await self._tagged("Deposit", document)
            if earlier is not None:
                return [_Written(earlier, "")]
        if found is None:
            received = shapes.deposit(document, chosen, refs, self._receivable)
            return [await self._made("Deposit", received, key, document)]
        invoice_id, customer_id = found
        paid = shapes.payment(document, chosen, refs, invoice_id, customer_id)
        made = [await self._made("Payment", paid, key, document)]
        if chosen.fee and made[0].target_id.startswith("Payment/"):
            fee = shapes.purchase(document, chosen, refs, chosen.fee, "fee")
            made.append(await self._made("Purchase", fee, f"{key}-fee", document))
        return made

    async def _refs(self, document: Document, chosen: Shape) -> Refs:
        """The ids the document's body refers to; ``TargetRejected`` (before anything is
        written) when QuickBooks lacks one of its accounts."""
        codes = sorted({code for code, _, _ in document.postings})
        accounts = {code: await self._account(code) for code in codes}
        customer = ""
        needs_customer = chosen.kind in ("invoice", "refund") or (
            chosen.kind in ("journal", "deposit", "payment")
            and any(code in self._receivable for code in codes)
        )
        if needs_customer:
            customer = await self._customer(chosen.customer or shapes.SALES_CUSTOMER)
        items: dict[str, str] = {}
        if chosen.kind in ("invoice", "refund"):
            for code, amount in chosen.lines:
                if amount > 0 or chosen.kind == "refund":
                    items[code] = await self._item(code, accounts[code])
        return Refs(accounts, items, customer)

    # ------------------------------------------------------------------ update and void

    async def _update(
        self, part: tuple[str, str], document: Document, chosen: Shape
    ) -> _Written | None:
        """A full update of the entity with its current ``SyncToken`` (read again after a
        stale-object error); None when the entity is gone (the caller re-creates)."""
        entity, object_id = part
        refs = await self._refs(document, chosen)
        if chosen.kind == "journal":
            ((currency, part_name),) = shapes.journal_parts(document)
            made = shapes.journal(document, currency, part_name, refs, self._receivable)
        elif chosen.kind == "invoice":
            made = shapes.invoice(document, chosen, refs)
        elif chosen.kind == "deposit":
            made = shapes.deposit(document, chosen, refs, self._receivable)
        elif chosen.kind == "purchase":
            made = shapes.purchase(document, chosen, refs, chosen.lines)
        elif chosen.kind == "transfer":
            made = shapes.transfer(document, chosen, refs)
        else:
            made = shapes.refund(document, chosen, refs)
        for _ in range(_STALE_TRIES):
            held = await self._read(entity, object_id)
            if held is None or _voided(entity, held):
                return None
            token = str(held.get("SyncToken", "0"))
            seed = (
                f"{document.idempotency_key}\x00{document.content_hash}\x00{object_id}\x00{token}"
            )
            request = _request_id("lh-u", seed)
            try:
                return await self._post(
                    entity, {**made, "Id": object_id, "SyncToken": token, "sparse": False}, request
                )
            except Fault as exc:
                if STALE_OBJECT not in exc.codes:
                    raise
        raise TargetUnavailable(f"{entity} {object_id}: QuickBooks kept answering Stale Object")

    async def _void(self, entity: str, object_id: str) -> str:
        """Void or delete one entity (with its current ``SyncToken``); its ``intuit_tid``."""
        for _ in range(_STALE_TRIES):
            held = await self._read(entity, object_id)
            if held is None or _voided(entity, held):
                return ""
            token = str(held.get("SyncToken", "0"))
            request = _request_id("lh-v", f"{entity}\x00{object_id}\x00{token}")
            if entity == "Invoice":
                params = {"operation": "void"}
            elif entity == "Payment":
                params = {"operation": "update", "include": "void"}
            else:
                params = {"operation": "delete"}
            ident: dict[str, Any] = {"Id": object_id, "SyncToken": token}
            if entity == "Payment":
                ident["sparse"] = True
            try:
                written = await self._post(entity, ident, request, params)
            except Fault as exc:
                if NOT_FOUND in exc.codes:
                    return ""
                if STALE_OBJECT not in exc.codes:
                    raise
                continue
            return written.tid
        raise TargetUnavailable(f"{entity} {object_id}: QuickBooks kept answering Stale Object")

    # ------------------------------------------------------------------ lookups

    async def _account(self, code: str) -> str:
        """The Id of the QuickBooks Account numbered ``code`` (else named as the chart names
        it); the list is read once, and again when a code is missing."""
        for attempt in range(2):
            if self._account_ids is None or attempt:
                rows = await self._query_all("select * from Account")
                self._account_ids = {
                    str(a["AcctNum"]): str(a["Id"]) for a in rows if a.get("AcctNum")
                }
                self._account_names = {str(a["Name"]): str(a["Id"]) for a in rows}
            if code in self._account_ids:
                return self._account_ids[code]
            chart = (self.accounts or {}).get(code)
            if chart is not None and chart.name in self._account_names:
                return self._account_names[chart.name]
        chart = (self.accounts or {}).get(code)
        named = f" or named {chart.name!r}" if chart is not None else ""
        raise TargetRejected(f"QuickBooks has no account numbered {code}{named}")

    async def _customer(self, name: str) -> str:
        """The Id of the Customer ``name``: found by ``DisplayName``, else created (once)."""
        if name in self._customers:
            return self._customers[name]
        query = f"select * from Customer where DisplayName = '{_quoted(name)}'"
        found = [c for c in await self._query(query) if c.get("DisplayName") == name]
        if found:
            customer_id = str(found[0]["Id"])
        else:
            request = _request_id("lh-c", f"{self.realm_id}\x00{name}")
            made = await self._post("Customer", {"DisplayName": name[:500]}, request)
            customer_id = made.target_id.split("/", 1)[1]
        self._customers[name] = customer_id
        return customer_id

    async def _item(self, code: str, account_id: str) -> str:
        """The Id of the Service item whose income account is ``code``: found by ``Name``,
        else created (once)."""
        if code in self._items:
            return self._items[code]
        name = shapes.item_name((self.accounts or {}).get(code), code)
        query = f"select * from Item where Name = '{_quoted(name)}'"
        found = [i for i in await self._query(query) if i.get("Name") == name]
        if found:
            item_id = str(found[0]["Id"])
        else:
            request = _request_id("lh-i", f"{self.realm_id}\x00{name}")
            item = {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": account_id}}
            made = await self._post("Item", item, request)
            item_id = made.target_id.split("/", 1)[1]
        self._items[code] = item_id
        return item_id

    async def _invoice(self, order: str) -> tuple[str, str] | None:
        """(Id, customer Id) of the live Invoice of ``order``, if QuickBooks holds one."""
        number = shapes.invoice_number(order)
        for item in await self._query(f"select * from Invoice where DocNumber = '{number}'"):
            if not _voided("Invoice", item) and item.get("DocNumber") == number:
                return str(item["Id"]), str(item["CustomerRef"]["value"])
        return None

    async def _tagged(self, entity: str, document: Document) -> str | None:
        """The live ``entity`` of the document's date whose tag names its key (no part)."""
        day = document.business_date.isoformat()
        for item in await self._query_all(f"select * from {entity} where TxnDate = '{day}'"):
            tag = TAG.search(str(item.get("PrivateNote") or ""))
            ours = tag is not None and tag[1] == document.idempotency_key and not tag[3]
            if ours and not _voided(entity, item):
                return f"{entity}/{item['Id']}"
        return None

    async def health_check(self) -> str:
        """The refresh token and the company are usable: ``GET /companyinfo/{realm}`` (a token
        refresh first when the access token is stale; ``ConfigError`` when Intuit refuses the
        refresh token, ``TargetUnavailable`` when it is away)."""
        await self._call("GET", f"/companyinfo/{quote(self.realm_id, safe='')}", None, {})
        return "QuickBooks answered for the company"

    async def _read(self, entity: str, object_id: str) -> dict[str, Any] | None:
        """The entity as QuickBooks holds it, or None when it does not (deleted)."""
        try:
            response = await self._call("GET", f"/{entity.lower()}/{object_id}", None, {})
        except Fault as exc:
            if NOT_FOUND in exc.codes:
                return None
            raise
        found: dict[str, Any] = orjson.loads(response.body)[entity]
        return found

    async def _query(self, query: str) -> list[dict[str, Any]]:
        response = await self._call("GET", "/query", None, {"query": query})
        answer = orjson.loads(response.body).get("QueryResponse") or {}
        entity = query.split(" from ", 1)[1].split(" ", 1)[0]
        return list(answer.get(entity, []))

    async def _query_all(self, query: str) -> list[dict[str, Any]]:
        """Every row of ``query``, a page of 1,000 at a time."""
        found: list[dict[str, Any]] = []
        start = 1
        while True:
            page = await self._query(f"{query} startposition {start} maxresults {_PAGE}")
            found.extend(page)
            if len(page) < _PAGE:
                return found
            start += _PAGE

    # ------------------------------------------------------------------ HTTP

    async def _made(
        self, entity: str, item: dict[str, Any], request_id: str, document: Document
    ) -> _Written:
        """Create one entity of ``document`` under ``request_id``. QuickBooks answers a
        repeated ``requestid`` with its first response, a refusal too: when the document was
        refused before (and is sent again because its content changed), the refusal may be
        that replay, so a refused create is tried once more under a ``requestid`` of its
        content. Nothing was written under the first one (only an earlier version created this
        way, its answer lost, could still be copied: see the README's limits)."""
        try:
            return await self._post(entity, item, request_id)
        except Fault as exc:
            if STALE_OBJECT in exc.codes or NOT_FOUND in exc.codes:
                raise
        again = _request_id("lh-r", f"{request_id}\x00{document.content_hash}")
        return await self._post(entity, item, again)

    async def _post(
        self,
        entity: str,
        item: dict[str, Any],
        request_id: str,
        params: dict[str, str] | None = None,
    ) -> _Written:
        """One write under ``request_id``; the ``Entity/Id`` QuickBooks answered with (the
        entity named in the answer: a replayed request answers as it first did)."""
        query = {**(params or {}), "requestid": request_id}
        response = await self._call("POST", f"/{entity.lower()}", body(item), query)
        data = orjson.loads(response.body)
        answered = next((k for k in data if k != "time" and isinstance(data[k], dict)), entity)
        return _Written(f"{answered}/{data[answered]['Id']}", response.tid)

    async def _call(
        self, method: str, path: str, payload: bytes | None, params: dict[str, str]
    ) -> Response:
        query = urlencode({**params, "minorversion": str(self.minor_version)}, quote_via=quote)
        url = f"{self.api}/company/{quote(self.realm_id, safe='')}{path}?{query}"
        refused: str | None = None
        for _ in range(2):
            token = await self.tokens.access(refused=refused)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            async with self.limits:
                response = await self.transport.request(method, url, headers, payload)
            if response.status != 401:
                return checked(method, path, response)
            refused = token
        raise TargetUnavailable(f"{method} {path}: QuickBooks refused a fresh access token")


def _voided(entity: str, item: Mapping[str, Any]) -> bool:
    """Whether QuickBooks shows ``item`` voided (a voided Invoice or Payment keeps its Id, with
    its amounts zeroed and ``Voided`` as its note)."""
    if entity not in _VOIDABLE:
        return False
    return str(item.get("PrivateNote") or "").startswith("Voided") or Decimal(
        str(item.get("TotalAmt", "1"))
    ) == Decimal(0)


def _parts(target_id: str) -> list[tuple[str, str]]:
    """(entity, Id) of each entity a target id names."""
    parts = []
    for part in target_id.split("+"):
        entity, _, object_id = part.rpartition("/")
        parts.append((entity or "JournalEntry", object_id))
    return parts


def _request_id(prefix: str, seed: str) -> str:
    """A ``requestid`` (QuickBooks allows 50 characters) derived from ``seed``."""
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:40]}"[:50]


def _quoted(value: str) -> str:
    """``value`` inside a query's single quotes (QuickBooks escapes a quote with ``\\``)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _tid(made: list[_Written], document: Document) -> str:
    for written in reversed(made):
        if written.tid:
            return written.tid
    return f"qbo-{document.idempotency_key}"
