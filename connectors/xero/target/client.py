"""``XeroTarget``: each document as the Xero object an accountant expects (``shapes``).

A target id names the object's collection: ``Invoices/<id>``, ``BankTransactions/<id>``, …;
a payment with a fee is two objects, ``Payments/<id>+BankTransactions/<id>`` (an id without a
collection is a ManualJournal written before this scheme).

- create: ``PUT <collection>`` under the document's ``Idempotency-Key`` (a payment's fee
  ``SPEND`` under ``<key>-fee``); contacts are looked up by name, else created once (``PUT
  Contacts`` under a key derived from the name), and remembered.
- update: in place (``POST <collection>/<id>``) for journals, invoices and bank transactions
  whose shape is unchanged; otherwise (payments, transfers, a changed shape) the target voids
  the old object(s) and creates the document again under a revised idempotency key (derived
  from the old target id, ``Document.replacing``), which the receipt carries
  (``Receipt.idempotency_key``) so the sender records it.
- void: journals ``VOIDED``, invoices ``VOIDED``, payments, bank transactions and transfers
  ``DELETED``; voiding twice repeats the first call's idempotency key.
- held: every live object of the five collections whose Reference (Narration) ends with a
  ``[KEY HASH]`` tag.
- a ``balance`` document (a bank statement's balance) is skipped: Xero has no balance
  assertion (``NOT_SENT``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlencode

import orjson

from connectors.xero.target import shapes
from connectors.xero.target.auth import Tokens
from connectors.xero.target.limits import Limits
from connectors.xero.target.settings import API
from connectors.xero.target.shapes import ID_FIELD, TAG, Shape
from connectors.xero.target.transport import Response, Transport, body, checked
from hub.domain.documents import BALANCE, Document
from hub.errors import TargetUnavailable
from hub.spi.target import NOT_SENT, HeldDocument, Receipt

if TYPE_CHECKING:
    from hub.spi.config import Account

_LIVE: dict[str, set[str | None]] = {
    "ManualJournals": {"POSTED"},
    "Invoices": {"AUTHORISED", "PAID"},
    "Payments": {"AUTHORISED"},
    "BankTransactions": {"AUTHORISED"},
    "BankTransfers": {"AUTHORISED", None},
}
_IN_PLACE = {
    ("ManualJournals", "journal"),
    ("Invoices", "invoice"),
    ("BankTransactions", "receive"),
    ("BankTransactions", "spend"),
}
_PAGE = 100


class XeroTarget:
    """One Xero organisation (``xero_tenant_id``) as the target of one ledgerhub tenant.

    ``accounts`` is the tenant's chart (code → account with its role); without it every
    document is a ManualJournal.
    """

    name: ClassVar[str] = "xero"
    supports_update: ClassVar[bool] = True

    def __init__(
        self,
        transport: Transport,
        tokens: Tokens,
        xero_tenant_id: str,
        *,
        api: str = API,
        limits: Limits | None = None,
        accounts: Mapping[str, Account] | None = None,
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.xero_tenant_id = xero_tenant_id
        self.api = api.rstrip("/")
        self.limits = limits or Limits()
        self.accounts = accounts
        self._contacts: dict[str, str] = {}
        self.request_ids: dict[str, str] = {}
        """Idempotency key → Xero's correlation id of the last write under it."""

    async def create(self, document: Document) -> Receipt:
        """Write the document as its Xero object(s), under its idempotency key."""
        if document.kind == BALANCE:
            return Receipt(NOT_SENT, f"xero-not-sent-{document.idempotency_key}")
        chosen = shapes.shape(document, self.accounts)
        key = document.idempotency_key
        if chosen.kind == "journal":
            made = [await self._put("ManualJournals", shapes.journal(document), key)]
        elif chosen.kind == "invoice":
            contact = await self._contact(chosen.contact)
            made = [await self._put("Invoices", shapes.invoice(document, chosen, contact), key)]
        elif chosen.kind == "transfer":
            made = [await self._put("BankTransfers", shapes.transfer(document, chosen), key)]
        elif chosen.kind == "payment":
            made = await self._payment(document, chosen)
        else:
            kind: Literal["RECEIVE", "SPEND"] = "RECEIVE" if chosen.kind == "receive" else "SPEND"
            contact = await self._contact(chosen.contact)
            made = [
                await self._put(
                    "BankTransactions",
                    shapes.bank_transaction(document, chosen, kind, chosen.lines, contact),
                    key,
                )
            ]
        return Receipt("+".join(made), self.request_ids.pop(key, f"xero-{key}"))

    async def update(self, target_id: str, document: Document) -> Receipt:
        """In place where Xero allows it, else void and create again under a revised key."""
        if document.kind == BALANCE:
            return Receipt(NOT_SENT, f"xero-not-sent-{document.idempotency_key}")
        chosen = shapes.shape(document, self.accounts)
        parts = _parts(target_id)
        collection, object_id = parts[0]
        if len(parts) == 1 and (collection, chosen.kind) in _IN_PLACE:
            item = await self._body(document, chosen)
            item[ID_FIELD[collection]] = object_id
            key = f"{document.idempotency_key}-{document.content_hash[:12]}"
            await self._write("POST", f"/{collection}/{object_id}", {collection: [item]}, key)
            return Receipt(target_id, self.request_ids.pop(key, f"xero-{key}"))
        await self.void(target_id)
        fresh = document.replacing(target_id)
        receipt = await self.create(fresh)
        return dataclasses.replace(receipt, idempotency_key=fresh.idempotency_key)

    async def void(self, target_id: str) -> Receipt:
        """Void (journals, invoices) or delete (payments, bank transactions, transfers) every
        object of ``target_id``."""
        if target_id == NOT_SENT:
            return Receipt(NOT_SENT, "xero-not-sent")
        for collection, object_id in _parts(target_id):
            path, key = f"/{collection}/{object_id}", f"void-{object_id}"
            if collection == "ManualJournals":
                item = {"ManualJournalID": object_id, "Status": "VOIDED",
                        "Narration": "voided by ledgerhub"}  # fmt: skip
                await self._write("POST", path, {collection: [item]}, key)
            elif collection == "Invoices":
                item = {"InvoiceID": object_id, "Status": "VOIDED"}
                await self._write("POST", path, {collection: [item]}, key)
            elif collection == "BankTransactions":
                await self._delete_bank_transaction(object_id, key)
            else:  # Payments, BankTransfers: {"Status": "DELETED"}
                await self._write("POST", path, {"Status": "DELETED"}, key)
        last = f"void-{_parts(target_id)[-1][1]}"
        return Receipt(target_id, self.request_ids.pop(last, f"xero-{last}"))

    async def held(self) -> list[HeldDocument]:
        """ledgerhub's live objects, found by the tag at the end of their Reference."""
        main: dict[str, tuple[str, str]] = {}
        fees: dict[str, str] = {}
        for collection in shapes.COLLECTIONS:
            for item in await self._list(collection):
                if item.get("Status") not in _LIVE[collection]:
                    continue
                text = item.get("Narration" if collection == "ManualJournals" else "Reference")
                tag = TAG.search(text or "")
                if tag is None:
                    continue
                target_id = f"{collection}/{item[ID_FIELD[collection]]}"
                if tag[3]:
                    fees[tag[1]] = target_id
                else:
                    main[tag[1]] = (target_id, tag[2])
        return [
            HeldDocument(key, "+".join(filter(None, (target_id, fees.get(key)))), content_hash)
            for key, (target_id, content_hash) in sorted(main.items())
        ]

    async def health_check(self) -> str:
        """The refresh token and the organisation are usable: ``GET /Organisation`` (a token
        refresh first when the access token is stale; ``ConfigError`` when Xero refuses the
        refresh token, ``TargetUnavailable`` when it is away)."""
        await self._call("GET", "/Organisation", None, None)
        return "Xero answered for the organisation"

    async def _payment(self, document: Document, chosen: Shape) -> list[str]:
        """A payment of the order's invoice and its fee ``SPEND``; a ``RECEIVE`` when the
        invoice is not in Xero."""
        key = document.idempotency_key
        invoice_id = await self._invoice(chosen.order) if chosen.order else None
        if invoice_id is not None:
            # a RECEIVE written before the invoice was there (its answer lost) is this document
            earlier = await self._tagged("BankTransactions", key)
            if earlier is not None:
                return [earlier]
        if invoice_id is None:
            contact = await self._contact(chosen.contact)
            receive = shapes.bank_transaction(document, chosen, "RECEIVE", chosen.lines, contact)
            return [await self._put("BankTransactions", receive, key)]
        made = [await self._put("Payments", shapes.payment(document, chosen, invoice_id), key)]
        if chosen.fee:
            payee = await self._contact(chosen.payee)
            spend = shapes.bank_transaction(document, chosen, "SPEND", chosen.fee, payee, "fee")
            made.append(await self._put("BankTransactions", spend, f"{key}-fee"))
        return made

    async def _body(self, document: Document, chosen: Shape) -> dict[str, Any]:
        """The object an in-place update sends (journal, invoice, bank transaction)."""
        if chosen.kind == "journal":
            return shapes.journal(document)
        contact = await self._contact(chosen.contact)
        if chosen.kind == "invoice":
            return shapes.invoice(document, chosen, contact)
        kind: Literal["RECEIVE", "SPEND"] = "RECEIVE" if chosen.kind == "receive" else "SPEND"
        return shapes.bank_transaction(document, chosen, kind, chosen.lines, contact)

    async def _invoice(self, order: str) -> str | None:
        """The id of the live invoice of ``order``, if Xero holds one."""
        query = urlencode({"InvoiceNumbers": shapes.invoice_number(order)})
        response = await self._call("GET", f"/Invoices?{query}", None, None)
        for item in orjson.loads(response.body).get("Invoices", []):
            if item.get("Status") in ("AUTHORISED", "PAID"):
                return str(item["InvoiceID"])
        return None

    async def _tagged(self, collection: str, key: str) -> str | None:
        """The live object of ``collection`` whose tag names ``key`` (not a fee part)."""
        query = urlencode({"where": f'Reference.Contains("[{key} ")'}, quote_via=quote)
        response = await self._call("GET", f"/{collection}?{query}", None, None)
        for item in orjson.loads(response.body).get(collection, []):
            tag = TAG.search(item.get("Reference") or "")
            if item.get("Status") in _LIVE[collection] and tag and tag[1] == key and not tag[3]:
                return f"{collection}/{item[ID_FIELD[collection]]}"
        return None

    async def _contact(self, name: str) -> str:
        """The id of the contact ``name``: found by name, else created (once)."""
        if name in self._contacts:
            return self._contacts[name]
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        query = urlencode({"where": f'Name=="{escaped}"'}, quote_via=quote)
        response = await self._call("GET", f"/Contacts?{query}", None, None)
        found = [c for c in orjson.loads(response.body).get("Contacts", []) if c["Name"] == name]
        if found:
            contact_id = str(found[0]["ContactID"])
        else:
            seed = f"{self.xero_tenant_id}\x00{name}".encode()
            key = f"lh-contact-{hashlib.sha256(seed).hexdigest()[:40]}"
            made = await self._put("Contacts", {"Name": name}, key)
            contact_id = made.split("/", 1)[1]
        self._contacts[name] = contact_id
        return contact_id

    async def _delete_bank_transaction(self, object_id: str, key: str) -> None:
        response = await self._call("GET", f"/BankTransactions/{object_id}", None, None)
        held = orjson.loads(response.body)["BankTransactions"][0]
        if held.get("Status") == "DELETED":
            return
        kept = ("BankTransactionID", "Type", "BankAccount", "LineItems", "Contact")
        item = {k: held[k] for k in kept if k in held} | {"Status": "DELETED"}
        path = f"/BankTransactions/{object_id}"
        await self._write("POST", path, {"BankTransactions": [item]}, key)

    async def _list(self, collection: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            response = await self._call("GET", f"/{collection}?page={page}", None, None)
            items = orjson.loads(response.body).get(collection, [])
            found.extend(items)
            if len(items) < _PAGE:
                return found
            page += 1

    async def _put(self, collection: str, item: dict[str, Any], key: str) -> str:
        """Create one object; its ``collection/id``."""
        return await self._write("PUT", f"/{collection}", {collection: [item]}, key)

    async def _write(self, method: str, path: str, payload: Any, key: str) -> str:
        """One write; the ``collection/id`` of the object Xero answered with."""
        response = await self._call(method, path, body(payload), key)
        collection = path.strip("/").split("/", 1)[0]
        item = orjson.loads(response.body)[collection][0]
        self.request_ids[key] = response.headers.get("Xero-Correlation-Id") or f"xero-{key}"
        return f"{collection}/{item[ID_FIELD[collection]]}"

    async def _call(
        self, method: str, path: str, payload: bytes | None, key: str | None
    ) -> Response:
        refused: str | None = None
        for _ in range(2):
            token = await self.tokens.access(refused=refused)
            headers = {
                "Authorization": f"Bearer {token}",
                "xero-tenant-id": self.xero_tenant_id,
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
            if key is not None:
                headers["Idempotency-Key"] = key
            async with self.limits:
                response = await self.transport.request(method, self.api + path, headers, payload)
            if response.status != 401:
                return checked(method, path.split("?", 1)[0], response)
            refused = token
        raise TargetUnavailable(f"{method} {path}: Xero refused a fresh access token")


def _parts(target_id: str) -> list[tuple[str, str]]:
    """(collection, id) of each object a target id names."""
    parts = []
    for part in target_id.split("+"):
        collection, _, object_id = part.rpartition("/")
        parts.append((collection or "ManualJournals", object_id))
    return parts
