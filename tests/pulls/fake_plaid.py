"""A local Plaid-compatible ``POST /transactions/sync`` (aiohttp on 127.0.0.1) for the pull tests.

It behaves like Plaid's OpenAPI spec (``../shared/reference/plaid/``, API version 2020-09-14)
where the puller relies on it: ``client_id``, ``secret`` and ``access_token`` in the JSON body
(a wrong one is 400 ``INVALID_INPUT``/``INVALID_API_KEYS`` or ``INVALID_ACCESS_TOKEN``), ``count``
1-500 (default 100), an opaque ``cursor`` (none: the whole history), answers with ``added``,
``modified``, ``removed`` (``{transaction_id, account_id}``), ``accounts`` (with
``balances.iso_currency_code``), ``next_cursor``, ``has_more``, ``request_id`` and
``transactions_update_status``; errors as ``{error_type, error_code, error_message,
display_message, request_id}``.

The Item's history is a change log (``add``, ``modify``, ``remove``); each change is a mutation.
A cursor handed out in the middle of a pagination loop (``has_more`` true) is refused with 400
``TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`` once the data has changed since it was issued,
so the loop must restart from its first cursor, as Plaid documents. Faults: ``fault_rate`` of the
calls (``429`` ``RATE_LIMIT_EXCEEDED``, ``500`` ``API_ERROR``, ``timeout``) or the ``faults``
deque; ``on_request`` is called with the call's number before it is answered (a test may mutate
the data there).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class _Cursor:
    index: int
    generation: int
    mid_loop: bool


class FakePlaid:
    """One Item's transactions behind ``/transactions/sync`` (module docstring)."""

    def __init__(
        self,
        *,
        client_id: str = "client-abc",
        secret: str = "plaid-secret-0123456789",
        access_token: str = "access-sandbox-item-secret",
        accounts: dict[str, str] | None = None,
        fault_rate: float = 0.0,
        seed: int = 1,
        stall: float = 3.0,
    ) -> None:
        self.client_id, self.secret, self.access_token = client_id, secret, access_token
        self.accounts = accounts or {"acc_checking": "USD"}
        """account_id → currency."""
        self.changes: list[tuple[str, dict[str, Any]]] = []
        self.transactions: dict[str, dict[str, Any]] = {}
        self.generation = 0
        self._cursors: dict[str, _Cursor] = {}
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self.stall = stall
        self.faults: deque[str] = deque()
        self.injected: collections.Counter[str] = collections.Counter()
        self.calls = 0
        self.mutation_errors = 0
        self.on_request: Callable[[int], None] | None = None
        self.url = ""

    # ------------------------------------------------------------------ the Item's history

    def add(
        self,
        transaction_id: str,
        amount: str,
        day: str,
        name: str,
        *,
        account_id: str = "acc_checking",
        pending: bool = False,
        pending_transaction_id: str | None = None,
    ) -> dict[str, Any]:
        """A new transaction (``amount`` as Plaid writes it: positive = money out)."""
        tx = {
            "account_id": account_id,
            "amount": float(amount),
            "iso_currency_code": self.accounts[account_id],
            "unofficial_currency_code": None,
            "date": day,
            "authorized_date": day,
            "name": name,
            "merchant_name": None,
            "payment_channel": "online",
            "pending": pending,
            "pending_transaction_id": pending_transaction_id,
            "transaction_id": transaction_id,
        }
        self.transactions[transaction_id] = tx
        self._change("added", tx)
        return tx

    def modify(self, transaction_id: str, **fields: Any) -> None:
        tx = {**self.transactions[transaction_id], **fields}
        if "amount" in fields:
            tx["amount"] = float(fields["amount"])
        self.transactions[transaction_id] = tx
        self._change("modified", tx)

    def remove(self, transaction_id: str) -> None:
        tx = self.transactions.pop(transaction_id)
        self._change("removed", {"transaction_id": transaction_id, "account_id": tx["account_id"]})

    def _change(self, kind: str, obj: dict[str, Any]) -> None:
        self.changes.append((kind, dict(obj)))
        self.generation += 1

    # ------------------------------------------------------------------ the API

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/transactions/sync", self._sync)
        return app

    def _fault(self) -> str | None:
        if self.faults:
            fault: str | None = self.faults.popleft()
        elif self.fault_rate > 0 and self.random.random() < self.fault_rate:
            fault = self.random.choice(("429", "500", "timeout"))
        else:
            fault = None
        if fault is not None:
            self.injected[fault] += 1
        return fault

    async def _sync(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.on_request is not None:
            self.on_request(self.calls)
        fault = self._fault()
        if fault == "429":
            return _error(429, "RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT",
                          "rate limit exceeded for attempts to access this item")  # fmt: skip
        if fault == "500":
            return _error(500, "API_ERROR", "INTERNAL_SERVER_ERROR",
                          "an unexpected error occurred")  # fmt: skip
        if fault == "timeout":
            await asyncio.sleep(self.stall)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed")
        if not isinstance(body, dict):
            return _error(400, "INVALID_REQUEST", "INVALID_BODY", "body must be an object")
        if body.get("client_id") != self.client_id or body.get("secret") != self.secret:
            return _error(400, "INVALID_INPUT", "INVALID_API_KEYS",
                          "invalid client_id or secret provided")  # fmt: skip
        if body.get("access_token") != self.access_token:
            return _error(400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN",
                          "provided access token is in an invalid format")  # fmt: skip
        count = body.get("count", 100)
        if not isinstance(count, int) or not 1 <= count <= 500:
            return _error(400, "INVALID_REQUEST", "INVALID_FIELD",
                          "count must be an integer from 1 to 500")  # fmt: skip
        given = body.get("cursor")
        if given is None or given == "":
            start = _Cursor(0, self.generation, False)
        else:
            found = self._cursors.get(str(given))
            if found is None:
                return _error(400, "INVALID_INPUT", "INVALID_FIELD", "cursor is not valid")
            if found.mid_loop and found.generation != self.generation:
                self.mutation_errors += 1
                return _error(
                    400,
                    "TRANSACTIONS_ERROR",
                    "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
                    "Underlying transaction data changed since last page was fetched. Please "
                    "restart pagination from last update.",
                )
            start = found
        page = self.changes[start.index : start.index + count]
        end = start.index + len(page)
        more = end < len(self.changes)
        token = secrets.token_urlsafe(24)
        self._cursors[token] = _Cursor(end, self.generation, more)
        touched = {obj["account_id"] for _, obj in page}
        answer = {
            "accounts": [
                {"account_id": a, "balances": {"iso_currency_code": c}, "name": a}
                for a, c in self.accounts.items()
                if a in touched
            ],
            "added": [obj for kind, obj in page if kind == "added"],
            "modified": [obj for kind, obj in page if kind == "modified"],
            "removed": [obj for kind, obj in page if kind == "removed"],
            "next_cursor": token,
            "has_more": more,
            "request_id": secrets.token_hex(8),
            "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
        }
        return web.Response(text=json.dumps(answer), content_type="application/json")


def _error(status: int, kind: str, code: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(
            {
                "error_type": kind,
                "error_code": code,
                "error_message": message,
                "display_message": None,
                "request_id": secrets.token_hex(8),
            }
        ),
        content_type="application/json",
    )


@contextlib.asynccontextmanager
async def serve(fake: FakePlaid) -> AsyncIterator[FakePlaid]:
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
