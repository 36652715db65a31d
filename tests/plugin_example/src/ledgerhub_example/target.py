"""The JSON-lines target: a tenant's accounting documents as an append-only journal file.

Each line is one JSON object: ``{"op": "create", "target_id", "key", "hash", "document"}`` or
``{"op": "void", "target_id"}``. What the target holds is the journal replayed: every created
document not voided since. The target id is the document's idempotency key, so a create
repeated after a crash finds it and writes nothing. A line is never changed, so the target
cannot update in place (``supports_update = False``): the hub voids and re-creates instead.
Amounts are written as decimal strings in major units (``"10.99"``) beside the exact minor
units; an account the tenant's chart does not have is refused (``TargetRejected``).

In a tenant's config::

    [tenants.default]
    sync = { target = "jsonl", path = "books/default.jsonl" }   # relative: to LEDGERHUB_HOME
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar

from hub.domain.documents import Document
from hub.domain.money import to_major
from hub.errors import ConfigError, TargetRejected, TargetUnavailable
from hub.spi.target import (
    HeldDocument,
    Receipt,
    Target,
    TargetEnvironment,
    TargetPlugin,
    TargetSettings,
)


class JsonLinesSettings(TargetSettings):
    """The ``sync`` keys of the ``jsonl`` target."""

    path: str | None = None
    """The journal file; relative paths are under ``LEDGERHUB_HOME``. Default:
    ``<tenant>.jsonl`` there."""


class JsonLinesPlugin(TargetPlugin):
    """The ``jsonl`` target (entry point ``ledgerhub.targets``)."""

    name: ClassVar[str] = "jsonl"
    settings: ClassVar[type[TargetSettings]] = JsonLinesSettings

    def open(self, settings: Any, env: TargetEnvironment) -> Target:
        if not isinstance(settings, JsonLinesSettings):
            raise ConfigError(f"{env.where}: not jsonl settings: {settings!r}")
        path = Path(settings.path or f"{env.books.name}.jsonl").expanduser()
        if not path.is_absolute():
            path = env.home / path
        return JsonLinesTarget(path, set(env.books.accounts))


def _document(document: Document) -> dict[str, Any]:
    return {
        "tenant": document.tenant,
        "key": document.key,
        "kind": document.kind,
        "date": document.business_date.isoformat(),
        "description": document.description,
        "postings": [
            {
                "account": code,
                "currency": currency,
                "minor": minor,
                "amount": str(to_major(minor, currency)),
            }
            for code, currency, minor in document.postings
        ],
    }


class JsonLinesTarget:
    """One tenant's journal at ``path``, on a chart with the account codes ``accounts``."""

    name: ClassVar[str] = "jsonl"
    supports_update: ClassVar[bool] = False

    def __init__(self, path: Path, accounts: Collection[str]) -> None:
        self.path = path
        self.accounts = frozenset(accounts)
        self._lock = asyncio.Lock()

    async def create(self, document: Document) -> Receipt:
        """Append ``document`` unless its idempotency key is held already."""
        key = document.idempotency_key
        unknown = sorted({code for code, _, _ in document.postings} - self.accounts)
        if unknown:
            raise TargetRejected(f"account {unknown[0]!r} is not in the chart of accounts")
        async with self._lock:
            if key not in await asyncio.to_thread(self._replay):
                line = {
                    "op": "create",
                    "target_id": key,
                    "key": key,
                    "hash": document.content_hash,
                    "document": _document(document),
                }
                await self._append(line)
        return Receipt(key, f"jsonl-{uuid.uuid4().hex[:16]}", key)

    async def update(self, target_id: str, document: Document) -> Receipt:
        """Never: a journal line is not changed (the hub voids and re-creates instead)."""
        raise TargetRejected("the jsonl target cannot change a document in place")

    async def void(self, target_id: str) -> Receipt:
        """Void ``target_id`` (nothing if it is not held)."""
        async with self._lock:
            if target_id in await asyncio.to_thread(self._replay):
                await self._append({"op": "void", "target_id": target_id})
        return Receipt(target_id, f"jsonl-{uuid.uuid4().hex[:16]}")

    async def held(self) -> list[HeldDocument]:
        """The documents created and not voided, in the order they were created."""
        async with self._lock:
            live = await asyncio.to_thread(self._replay)
        return [
            HeldDocument(line["key"], target_id, line["hash"]) for target_id, line in live.items()
        ]

    def _replay(self) -> dict[str, dict[str, Any]]:
        live: dict[str, dict[str, Any]] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return live
        except OSError as exc:
            raise TargetUnavailable(f"cannot read {self.path}: {exc.strerror}") from exc
        for line in text.splitlines():
            entry = json.loads(line)
            if entry["op"] == "create":
                live[entry["target_id"]] = entry
            else:
                live.pop(entry["target_id"], None)
        return live

    async def _append(self, entry: dict[str, Any]) -> None:
        text = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            await asyncio.to_thread(self._write, text)
        except OSError as exc:
            raise TargetUnavailable(f"cannot write {self.path}: {exc.strerror}") from exc

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
