"""``BeancountTarget``: one ledger file per tenant, rewritten atomically on every change.

The file is a header, an ``open`` directive for each account used, and one transaction per
document between ``; ledgerhub begin KEY`` and ``; ledgerhub end KEY`` comment lines, KEY being
the document's idempotency key (also the transaction's ``lh-key`` metadata and the target id).
Every write builds the whole new text, writes it to a temporary file in the same directory,
fsyncs it, renames it over the ledger and fsyncs the directory: a reader (``bean-check``,
Fava) sees the old file or the new one, never half of one. Updates replace a transaction in
place; a void removes it (the file is the books, so no copy is ever left behind).

Amounts are decimal strings made from minor units with the currency's exponent
(``hub.domain.money.to_major``); accounts are named ``Root:CODE-Name`` from the tenant's chart.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from hub.domain.documents import Document
from hub.domain.money import to_major
from hub.errors import TargetRejected, TargetUnavailable
from hub.spi.target import HeldDocument, Receipt

if TYPE_CHECKING:
    from hub.spi.config import Account

_ROOTS = {
    "asset": "Assets",
    "liability": "Liabilities",
    "equity": "Equity",
    "income": "Income",
    "expense": "Expenses",
}
_BLOCK = re.compile(r"^; ledgerhub begin (\S+)\n(.*?)^; ledgerhub end \1\n", re.M | re.S)
_HASH = re.compile(r'^  lh-hash: "([0-9a-f]+)"$', re.M)
_OPENED = date(1970, 1, 1)
_Change = Callable[[dict[str, str]], object]


def account_name(account: Account) -> str:
    """``Assets:1000-Checking`` for account 1000 "Checking" of type asset."""
    words = re.findall(r"[A-Za-z0-9]+", account.name)
    slug = "-".join(w[:1].upper() + w[1:] for w in words)
    code = re.sub(r"[^A-Za-z0-9-]", "-", account.code)
    return f"{_ROOTS[account.type]}:{code}{'-' + slug if slug else ''}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


class BeancountTarget:
    """A tenant's Beancount ledger file at ``path``, with the tenant's chart of accounts."""

    name: ClassVar[str] = "beancount"
    supports_update: ClassVar[bool] = True

    def __init__(self, path: Path, chart: Mapping[str, Account]) -> None:
        self.path = path
        self.chart = chart
        self._lock = asyncio.Lock()

    async def create(self, document: Document) -> Receipt:
        """Append ``document`` unless its key is already in the file."""
        key = document.idempotency_key
        block = self._block(document)
        return await self._change(key, lambda blocks: blocks.setdefault(key, block))

    async def update(self, target_id: str, document: Document) -> Receipt:
        """Replace transaction ``target_id`` in place (appended if it is not there)."""
        block = self._block(document)

        def put(blocks: dict[str, str]) -> None:
            blocks[target_id] = block

        return await self._change(target_id, put)

    async def void(self, target_id: str) -> Receipt:
        """Remove transaction ``target_id`` from the books (nothing if it is not there)."""
        return await self._change(target_id, lambda blocks: blocks.pop(target_id, None))

    async def held(self) -> list[HeldDocument]:
        """The transactions in the file, with the content hash each was written from."""
        blocks = await asyncio.to_thread(self._read)
        found = []
        for key, block in blocks.items():
            match = _HASH.search(block)
            found.append(HeldDocument(key, key, match[1] if match else ""))
        return found

    async def _change(self, key: str, change: _Change) -> Receipt:
        async with self._lock:
            try:
                await asyncio.to_thread(self._rewrite, change)
            except OSError as exc:
                raise TargetUnavailable(f"cannot write {self.path}: {exc.strerror}") from exc
        return Receipt(key, f"file-{uuid.uuid4().hex[:16]}")

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return {m[1]: m[0] for m in _BLOCK.finditer(text)}

    def _rewrite(self, change: _Change) -> None:
        blocks = self._read()
        change(blocks)
        self._write(self._text(blocks))

    def _text(self, blocks: Mapping[str, str]) -> str:
        used = sorted(set(re.findall(r"^  ([A-Z][A-Za-z]*:\S+)\s", "".join(blocks.values()), re.M)))
        currencies = sorted(set(re.findall(r"^  \S+\s+-?[0-9.]+ ([A-Z]{3})$",
                                           "".join(blocks.values()), re.M)))  # fmt: skip
        lines = ["; written by ledgerhub: edits between its markers are replaced", ""]
        lines += [f'option "operating_currency" "{c}"' for c in currencies[:1]]
        lines += [f"{_OPENED.isoformat()} open {name}" for name in used]
        text = "\n".join(lines) + "\n\n"
        return text + "\n".join(blocks.values())

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _block(self, document: Document) -> str:
        key = document.idempotency_key
        lines = [
            f"; ledgerhub begin {key}",
            f"{document.business_date.isoformat()} * {_quote(document.description)}",
            f"  lh-key: {_quote(key)}",
            f"  lh-doc: {_quote(document.key)}",
            f"  lh-kind: {_quote(document.kind)}",
            f"  lh-hash: {_quote(document.content_hash)}",
        ]
        for code, currency, amount in document.postings:
            account = self.chart.get(code)
            if account is None:
                raise TargetRejected(f"account {code!r} is not in the chart of accounts")
            lines.append(f"  {account_name(account)}  {to_major(amount, currency)} {currency}")
        lines.append(f"; ledgerhub end {key}")
        return "\n".join(lines) + "\n"
