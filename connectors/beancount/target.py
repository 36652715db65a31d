"""``BeancountTarget``: one ledger file per tenant, kept in memory and written atomically.

The file is what beancount's own printer (``beancount.parser.printer``) makes of beancount's own
entries (``beancount.core.data``): an ``option "title"`` and an ``option "operating_currency"``
(the currency most postings use), then the entries in date order: each account's ``open`` on
the date of the first transaction that uses it, and one transaction per document, carrying its
idempotency key (``lh-key``, also the target id), document key (``lh-doc``), kind (``lh-kind``)
and content hash (``lh-hash``) as metadata, so the file describes itself and ``held`` reads the
documents back from it. Amounts are exact decimals made from minor units with the currency's
exponent (``hub.domain.money.to_major``); accounts are named ``Root:CODE-Name`` from the
tenant's chart (``account_name``). The file is ledgerhub's: anything else written into it is
dropped on the next write.

State. The file is parsed (with beancount's parser) once, on first use, into a table of
idempotency key → transaction, each with its printed text; later calls change that table. The
file's identity (inode, size, modification time) is compared with the one last read or written
before every call outside a batch and at the first call of each batch (a run that calls nothing
reads nothing), so a file another process (or an operator) rewrote is read again, never
overwritten from a stale table. A file that does not parse is never overwritten either: calls
fail with ``TargetUnavailable`` naming its line until it is fixed or moved away.

Writes. A write builds the whole text from the table (the printed entries are kept, so this is a
sort and a join), writes it to a temporary file in the same directory, fsyncs it, renames it over
the ledger and fsyncs the directory: a reader (``bean-check``, Fava) sees the old file or the new
one, never half of one. Outside a batch every call writes the file before it returns. Inside
``batch()`` calls change only the table, and ``flush()`` writes it, once for the whole sync run
(the sender's ``hub.spi.target.batched``); leaving the block with an error discards what was not
written (the table is read again from the file).

Crash safety, the invariant the sender relies on: *the file is written before the log records
an outcome, and every call is idempotent by key*. The sender appends ``accounting.document
.synced`` events only after ``flush()`` returned, so the log never claims a document the file
does not hold. The file may be ahead of the log (a crash after the rename, before the append):
the next run then repeats those calls, and each converges instead of duplicating: ``create`` with
a key the file already holds returns the transaction it holds, ``update`` replaces the
transaction in place, ``void`` of a transaction that is gone does nothing. A failed write leaves
the old file (and no temporary one); inside a batch the changes stay for ``flush`` to try again,
and when the sender gives up it records those documents as failed (not synced) and leaves the
block with an error, which drops them: they are sent again next run.

Statement balances. A ``balance`` document (a bank statement's closing balance at the end of its
business date, ``hub.domain.documents.BALANCE``) is written as a ``balance`` directive on the
bank account, dated the next day (Beancount asserts a balance at the start of its day), when the
books agree with the statement; where they do not, a failing assertion would make the whole file
fail ``bean-check`` over a true discrepancy the reconciliation already lists, so the directive is
a ``note`` on the account instead, stating the statement's balance, what the books hold and the
difference (and, as metadata, ``lh-statement`` and ``lh-difference``). Which they are is
Beancount's own judgment, made at every write (a later deposit can make a balance agree): the
file's text with every balance as an assertion is run through Beancount's loader (the code
behind ``bean-check``), and each assertion it reports as failing is written as a note. That costs
one load of the file per write, and only for a file that holds balances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from beancount import loader
from beancount.core import data
from beancount.core.amount import Amount
from beancount.core.interpolate import BalanceError
from beancount.parser import parser, printer

from hub.domain.documents import BALANCE, Document
from hub.domain.money import to_major
from hub.errors import TargetRejected, TargetUnavailable
from hub.spi.target import HeldDocument, Receipt

if TYPE_CHECKING:
    from hub.spi.config import Account

log = logging.getLogger(__name__)

_ROOTS = {
    "asset": "Assets",
    "liability": "Liabilities",
    "equity": "Equity",
    "income": "Income",
    "expense": "Expenses",
}
_HEADER = "; written by ledgerhub from the books: a change made here is replaced on its next write"
_Stamp = tuple[int, int, int]
"""A file's identity: inode, size, modification time (ns)."""


def account_name(account: Account) -> str:
    """``Assets:1000-Checking`` for account 1000 "Checking" of type asset."""
    words = re.findall(r"[A-Za-z0-9]+", account.name)
    slug = "-".join(w[:1].upper() + w[1:] for w in words)
    code = re.sub(r"[^A-Za-z0-9-]", "-", account.code)
    return f"{_ROOTS[account.type]}:{code}{'-' + slug if slug else ''}"


def _one_line(text: str) -> str:
    """``text`` on one line (a narration or metadata string)."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


@dataclass(frozen=True)
class _Entry:
    """One document's transaction: what ordering, ``open`` dates and ``held`` need, and its
    printed text."""

    key: str
    doc_key: str
    content_hash: str
    day: date
    accounts: tuple[str, ...]
    currencies: tuple[str, ...]
    text: str
    statement: data.Balance | None = None
    """For a statement balance: its assertion (``text`` is that printed), written as a note
    where the books disagree (``_note``)."""

    @classmethod
    def asserted(cls, balance: data.Balance) -> _Entry:
        """From a statement balance's assertion (built here, or read from the file)."""
        meta = balance.meta or {}
        return cls(
            key=str(meta.get("lh-key", "")),
            doc_key=str(meta.get("lh-doc", "")),
            content_hash=str(meta.get("lh-hash", "")),
            day=balance.date,
            accounts=(balance.account,),
            currencies=(balance.amount.currency,),
            text=printer.format_entry(balance),
            statement=balance,
        )

    @classmethod
    def of(cls, txn: data.Transaction) -> _Entry:
        """From a transaction (built here or parsed from the file); printed once."""
        meta = txn.meta or {}
        return cls(
            key=str(meta.get("lh-key", "")),
            doc_key=str(meta.get("lh-doc", "")),
            content_hash=str(meta.get("lh-hash", "")),
            day=txn.date,
            accounts=tuple(p.account for p in txn.postings),
            currencies=tuple(p.units.currency for p in txn.postings if p.units is not None),
            text=_printed(txn),
        )


class BeancountTarget:
    """A tenant's Beancount ledger file at ``path``, with the tenant's chart of accounts;
    ``title`` is the file's ``option "title"`` (default: from the file's name)."""

    name: ClassVar[str] = "beancount"
    supports_update: ClassVar[bool] = True

    def __init__(self, path: Path, chart: Mapping[str, Account], *, title: str = "") -> None:
        self.path = path
        self._chart = chart
        self.title = title or f"{path.stem} (ledgerhub)"
        self._lock = asyncio.Lock()
        self._names: dict[str, str] = {}
        """Account code → its Beancount name (``account_name``), as first needed."""
        self._entries: dict[str, _Entry] | None = None
        """Idempotency key → transaction; None: not read yet (or discarded)."""
        self._stamp: _Stamp | None = None
        """The file's identity when it was last read or written (None: there was no file)."""
        self._batches = 0
        self._checked = False
        """Whether this batch compared the file with the table already."""
        self._version = 0
        """Changes made to the table (counted), and ``_written``: how many the file holds."""
        self._written = 0

    @property
    def chart(self) -> Mapping[str, Account]:
        """The tenant's chart of accounts (code → account)."""
        return self._chart

    @chart.setter
    def chart(self, chart: Mapping[str, Account]) -> None:
        self._chart, self._names = chart, {}

    async def health_check(self) -> str:
        """The ledger file can be written: its folder takes a new file (the atomic rewrite's
        temporary one) and the file, if there is one, is readable and writable."""
        return await asyncio.to_thread(self._writable)

    def _writable(self) -> str:
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:  # the first write creates it
            folder = folder.parent
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
            os.close(fd)
            os.unlink(temp)
        except OSError as exc:
            raise TargetUnavailable(f"cannot write in {folder}: {exc.strerror}") from exc
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            raise TargetUnavailable(f"cannot read and write {self.path}")
        return f"{self.path} is writable"

    # ------------------------------------------------------------------ the Target calls

    async def create(self, document: Document) -> Receipt:
        """Add ``document`` unless its key is already held (then return the one held)."""
        key = document.idempotency_key
        entry = self._entry(document)
        entries = await self._current()
        if key not in entries:
            entries[key] = entry
            await self._changed()
        return Receipt(key, _request_id())

    async def update(self, target_id: str, document: Document) -> Receipt:
        """Replace transaction ``target_id`` (added if it is not there)."""
        entry = self._entry(document)
        entries = await self._current()
        if entries.get(target_id) != entry:
            entries[target_id] = entry
            await self._changed()
        return Receipt(target_id, _request_id())

    async def void(self, target_id: str) -> Receipt:
        """Remove transaction ``target_id`` from the books (nothing if it is not there)."""
        entries = await self._current()
        if entries.pop(target_id, None) is not None:
            await self._changed()
        return Receipt(target_id, _request_id())

    async def held(self) -> list[HeldDocument]:
        """The transactions the file holds (inside a batch: with the changes not yet written),
        with the content hash each was written from."""
        entries = await self._current()
        return [HeldDocument(key, key, e.content_hash) for key, e in entries.items()]

    # ------------------------------------------------------------------ batching

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Calls in the block change the table only; ``flush`` writes it. Leaving the block
        writes what is still unwritten, or, on an error, discards it (the file is read again).
        The file is compared with the table (and read if need be) once, at the block's first
        call: a run that calls nothing reads nothing."""
        if not self._batches:
            self._checked = False
        self._batches += 1
        try:
            yield
        except BaseException:
            self._batches -= 1
            if self._batches == 0:
                self._checked = False
                if self._dirty:
                    self._discard()  # what the block changed was not written: read it again
            raise
        self._batches -= 1
        if self._batches == 0:
            self._checked = False
            try:
                await self.flush()
            except BaseException:
                self._discard()
                raise

    async def flush(self) -> None:
        """Write the file if the table changed since it was last written; ``TargetUnavailable``
        if it cannot be: inside a batch the changes stay, for ``flush`` to try again (until the
        block ends); a single call's change is dropped (the table is read again)."""
        async with self._lock:  # the latest table, whoever changed it, written in call order
            if not self._dirty or self._entries is None:
                return
            # a file holding balances is loaded to check them: off the event loop
            version, entries = self._version, dict(self._entries)
            text = await asyncio.to_thread(self._text, entries)
            try:
                self._stamp = await asyncio.to_thread(self._write, text)
            except OSError as exc:
                if not self._batches:
                    self._discard()
                raise TargetUnavailable(f"cannot write {self.path}: {exc.strerror}") from exc
            self._written = version

    @property
    def _dirty(self) -> bool:
        """Whether the table holds changes the file does not."""
        return self._version != self._written

    # ------------------------------------------------------------------ the table

    async def _current(self) -> dict[str, _Entry]:
        """The table, read from the file on first use and whenever another writer changed it:
        compared before every call outside a batch, once per batch inside one (and never while
        the table holds changes not yet written: those are this run's)."""
        if self._entries is not None and (self._dirty or self._checked):
            return self._entries
        stamp = await asyncio.to_thread(self._stat)
        entries = self._entries
        if entries is None or stamp != self._stamp:
            async with self._lock:
                fresh, self._stamp = await asyncio.to_thread(self._read)
                self._entries, self._written = fresh, self._version
            entries = fresh
        self._checked = self._batches > 0
        return entries

    async def _changed(self) -> None:
        self._version += 1
        if not self._batches:
            await self.flush()

    def _discard(self) -> None:
        self._entries, self._stamp = None, None
        self._written = self._version

    def _stat(self) -> _Stamp | None:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetUnavailable(f"cannot read {self.path}: {exc.strerror}") from exc
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    def _read(self) -> tuple[dict[str, _Entry], _Stamp | None]:
        """The file's ledgerhub transactions (by ``lh-key``), and its identity as read."""
        try:
            with self.path.open(encoding="utf-8") as handle:
                stamp = os.fstat(handle.fileno())
                text = handle.read()
        except FileNotFoundError:
            return {}, None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise TargetUnavailable(f"cannot read {self.path}: {reason}") from exc
        parsed, errors, _ = parser.parse_string(text, report_filename=str(self.path))
        if errors:
            first = errors[0]
            where = f"{self.path}:{first.source['lineno']}" if first.source else str(self.path)
            raise TargetUnavailable(
                f"{where}: the ledger file does not parse ({first.message}); fix it or move "
                "it away, then sync again"
            )
        entries = {}
        for entry in parsed:
            if not entry.meta.get("lh-key"):
                continue
            if isinstance(entry, data.Transaction):
                read = _Entry.of(entry._replace(meta=_own_meta(entry.meta)))
            elif isinstance(entry, data.Balance):
                read = _Entry.asserted(entry._replace(meta=_own_meta(entry.meta)))
            elif isinstance(entry, data.Note) and isinstance(
                entry.meta.get("lh-statement"), Amount
            ):
                read = _Entry.asserted(_asserted(entry))
            else:
                continue
            entries[read.key] = read
        identity = (stamp.st_ino, stamp.st_size, stamp.st_mtime_ns)
        return entries, identity

    # ------------------------------------------------------------------ the text

    def _name(self, code: str) -> str:
        """Account ``code``'s Beancount name; ``TargetRejected`` if the chart lacks it."""
        name = self._names.get(code)
        if name is None:
            account = self._chart.get(code)
            if account is None:
                raise TargetRejected(f"account {code!r} is not in the chart of accounts")
            name = self._names[code] = account_name(account)
        return name

    def _entry(self, document: Document) -> _Entry:
        """``document`` as a beancount transaction (a ``balance`` document as the assertion
        of its statement balance, dated the day after its business date); ``TargetRejected``
        for an account the chart does not have."""
        meta = data.new_metadata(str(self.path), 0)
        meta.update(
            {
                "lh-key": document.idempotency_key,
                "lh-doc": _one_line(document.key),
                "lh-kind": _one_line(document.kind),
                "lh-hash": document.content_hash,
            }
        )
        if document.kind == BALANCE:
            if len(document.postings) != 1:
                raise TargetRejected("a balance document states one account's balance")
            ((code, currency, amount),) = document.postings
            units = Amount(to_major(amount, currency), currency)
            day = document.business_date + timedelta(days=1)
            return _Entry.asserted(data.Balance(meta, day, self._name(code), units, None, None))
        postings = []
        for code, currency, amount in document.postings:
            units = Amount(to_major(amount, currency), currency)
            postings.append(data.Posting(self._name(code), units, None, None, None, None))
        payee, tags, links = _labels(document)
        txn = data.Transaction(
            meta,
            document.business_date,
            "*",
            payee,
            _one_line(document.description),
            tags,
            links,
            postings,
        )
        return _Entry.of(txn)

    def _text(self, entries: Mapping[str, _Entry]) -> str:
        """The whole file: options, then opens and transactions (and statement balances) in
        date order; a statement balance the books disagree with, by Beancount's own check
        (``_failing``), as a note."""
        text = self._joined(entries, {})
        if not any(e.statement is not None for e in entries.values()):
            return text
        failing = _failing(text)
        return self._joined(entries, failing) if failing else text

    def _joined(self, entries: Mapping[str, _Entry], failing: Mapping[str, data.Balance]) -> str:
        """The file's text, each statement balance keyed in ``failing`` written as a note."""
        first_use: dict[str, date] = {}
        currencies: Counter[str] = Counter()
        for entry in entries.values():
            currencies.update(entry.currencies)
            for account in entry.accounts:
                seen = first_use.get(account)
                if seen is None or entry.day < seen:
                    first_use[account] = entry.day
        lines = [_HEADER, f"option {_string('title')} {_string(self.title)}"]
        if currencies:
            # the currency most postings use (the first by code among equals)
            operating = min(currencies, key=lambda c: (-currencies[c], c))
            lines.append(f'option "operating_currency" "{operating}"')
        dated = [(day, False, account, _open(day, account)) for account, day in first_use.items()]
        dated += [
            (e.day, True, f"{e.doc_key}\x00{e.key}",
             _note(failing[e.key]) if e.key in failing else e.text)
            for e in entries.values()
        ]  # fmt: skip
        dated.sort(key=lambda item: item[:3])
        parts = ["\n".join(lines), "\n"]
        after_open = False
        for _, is_transaction, _, text in dated:
            if not after_open or is_transaction:  # the opens of a date stand together
                parts.append("\n")
            parts.append(text)
            after_open = not is_transaction
        return "".join(parts)

    def _write(self, text: str) -> _Stamp:
        """Write ``text`` atomically; the new file's identity."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
                written = os.fstat(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return (written.st_ino, written.st_size, written.st_mtime_ns)


_PAYEES = {"stripe": "Stripe", "shopify": "Shopify", "payroll": "Payroll", "square": "Square",
           "woocommerce": "WooCommerce", "paypal": "PayPal"}  # fmt: skip
"""How a connector's name reads as a payee (others: capitalized)."""


def _labels(document: Document) -> tuple[str | None, frozenset[str], frozenset[str]]:
    """The payee, tags and links a document's transaction carries: the customer of a sale (else
    the processor or provider it came from; none for a bank line, whose narration is the
    statement's text), a tag per connector (``#stripe``) and kind but journal (``#invoice``),
    and links that join what belongs together: ``^payout-<id>`` (a payout's journal),
    ``^order-<id>``."""
    parts = document.key.split("/")
    payout = parts[2] if parts[0] == "payout" and len(parts) >= 3 else None
    source = parts[1] if payout is not None else parts[0]
    kind = source.split(":", 1)[0]
    tags = {_tag(kind), _tag(document.kind)} - {"", "journal"}
    links = set()
    if payout is not None:
        links.add(f"payout-{_tag(payout)}")
    if document.order:
        links.add(f"order-{_tag(document.order)}")
    payee = document.customer
    if payee is None and kind != "bank":
        payee = _PAYEES.get(kind, kind.capitalize()) if kind else None
    return (_one_line(payee) if payee else None), frozenset(tags), frozenset(links)


def _tag(text: str) -> str:
    """``text`` as a Beancount tag or link name (letters, digits, ``-_/.``)."""
    return re.sub(r"[^A-Za-z0-9\-_/.]+", "-", text).strip("-")


def _printed(txn: data.Transaction) -> str:
    """The printer's text of ``txn`` (without the blank it leaves after an empty narration)."""
    head, _, rest = printer.format_entry(txn).partition("\n")
    return f"{head.rstrip()}\n{rest}"


def _failing(text: str) -> dict[str, data.Balance]:
    """The statement balances (by idempotency key) whose assertion Beancount's loader reports
    as failing in the file ``text``, each as the loader left it: with the difference it found
    (``diff_amount``: the books less the statement) when it could compute one."""
    loaded, errors, _ = loader.load_string(text)
    failing: dict[str, data.Balance] = {}
    for error in errors:
        entry = getattr(error, "entry", None)
        if isinstance(error, BalanceError) and isinstance(entry, data.Balance):
            key = (entry.meta or {}).get("lh-key")
            if key:
                failing[str(key)] = entry
    for entry in loaded:  # the loader replaced each failing assertion by one with its difference
        if isinstance(entry, data.Balance) and entry.diff_amount is not None:
            key = (entry.meta or {}).get("lh-key")
            if key and str(key) in failing:
                failing[str(key)] = entry
    return failing


def _note(balance: data.Balance) -> str:
    """The note written instead of a statement balance the books disagree with: the
    statement's balance, the books' and the difference, in words and as metadata."""
    stated = balance.amount
    meta = {k: v for k, v in (balance.meta or {}).items() if k.startswith("lh-")}
    meta["lh-statement"] = stated
    text = f"Bank statement balance at the end of {balance.date - timedelta(days=1)}: {stated}"
    difference = balance.diff_amount
    if difference is not None and difference.number is not None and stated.number is not None:
        books = Amount(stated.number + difference.number, stated.currency)
        apart = Amount(abs(difference.number), stated.currency)
        more = "more" if difference.number > 0 else "less"
        meta["lh-difference"] = difference
        text += f"; the books hold {books}, {apart} {more} (see the reconciliation exceptions)"
    note = data.Note(meta, balance.date, balance.account, text, frozenset(), frozenset())
    return printer.format_entry(note)


def _asserted(note: data.Note) -> data.Balance:
    """The statement balance a note (``_note``) read from the file stands for."""
    meta = _own_meta(note.meta)
    stated = meta.pop("lh-statement")
    meta.pop("lh-difference", None)
    assert isinstance(stated, Amount)
    return data.Balance(meta, note.date, note.account, stated, None, None)


def _open(day: date, account: str) -> str:
    return printer.format_entry(data.Open(data.new_metadata("", 0), day, account, [], None))


def _string(text: str) -> str:
    """A Beancount string literal, escaped as the printer escapes a narration."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _own_meta(meta: Mapping[str, object]) -> dict[str, object]:
    """A parsed transaction's metadata, without where the parser found it."""
    return {k: v for k, v in meta.items() if k not in ("filename", "lineno")}


def _request_id() -> str:
    return f"file-{uuid.uuid4().hex[:16]}"
