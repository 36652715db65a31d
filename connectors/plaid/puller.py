"""Pulling Plaid's ``POST /transactions/sync`` (API version 2020-09-14) for a bank feed.

One stream, ``transactions``, whose cursor is Plaid's. A pull is Plaid's update loop: from the
stored cursor, ``/transactions/sync`` pages (``count`` 100) until ``has_more`` is false. Each
page is committed with ``{"cursor": <the loop's first cursor>, "next": <next_cursor>}``, so a
pull that dies resumes at the next page; when the loop ends the cursor is its last
``next_cursor``. When Plaid answers ``TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`` (the data
changed under the loop; a resumed loop may get it too), the loop restarts from its first cursor,
as Plaid's documentation requires (at most ``MAX_RESTARTS`` times a pull); the pages fetched
again are duplicates in the log.

Events (type, external id), stream ``{source}/{transaction_id}``:

- ``added``: ``plaid.transaction.added``, ``{transaction_id}``;
- ``modified``: ``plaid.transaction.modified``, ``{transaction_id}:modified:{digest}`` (the
  first 16 hex digits of SHA-256 over the transaction as received, so the same modification
  fetched twice is a duplicate and a different one is new);
- ``removed``: ``plaid.transaction.removed``, ``{transaction_id}:removed``.

Pending transactions are left out, as the Plaid file import leaves them out: Plaid sends each
again, posted, under a new id (and then removes the pending one: that removal is left out too,
the cursor's ``pending`` list remembering which ids were pending). Amounts are read exactly
(``Decimal``) and negated (Plaid: positive = money out). A transaction of an account the
connection's ``accounts`` does not name is left out (with no ``accounts``, every account is
taken, named by its ``account_id``). A removed transaction's line states amount 0 in the
account's currency (learned from the accounts Plaid lists, else the tenant's), with no
description (Plaid's removal names none; and two removals must not look like duplicate lines).

Credentials (``client_id``, ``secret``, ``access_token``) travel in the request body, as the
spec defines; 429, 5xx, ``RATE_LIMIT_EXCEEDED``, ``API_ERROR``, ``INSTITUTION_ERROR`` and
timeouts are retried (tenacity); another error stops the pull with Plaid's ``error_type``,
``error_code`` and ``error_message``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson

from connectors.bank.lines import minor_units
from connectors.plaid.mapping import ADDED, MODIFIED, REMOVED
from hub.domain.events import NewEvent
from hub.spi.puller import (
    Page,
    PullContext,
    PulledStream,
    Puller,
    Response,
    SourceRejected,
    SourceUnavailable,
    call,
)

STREAM = "transactions"
MUTATION = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"
MAX_RESTARTS = 5
COUNT = 500
"""Plaid's largest page; a pull asks for ``PullContext.page_size`` (100, Plaid's default)."""
_RETRIED_TYPES = {"RATE_LIMIT_EXCEEDED", "API_ERROR", "INSTITUTION_ERROR"}


class _Restart(Exception):
    """Plaid said the data changed under the loop: start it again from its first cursor."""


class PlaidPuller(Puller):
    """``/transactions/sync`` as one stream (module docstring)."""

    streams: ClassVar[tuple[PulledStream, ...]] = (
        PulledStream(STREAM, ("transaction_id",), "cursor", (ADDED, MODIFIED, REMOVED)),
    )
    credentials: ClassVar[tuple[str, ...]] = ("client_id", "secret", "access_token")
    default_url: ClassVar[str] = "https://production.plaid.com"

    async def pull(self, ctx: PullContext) -> AsyncIterator[Page]:
        state = dict(ctx.state.get(STREAM) or {})
        start: str | None = state.get("cursor")
        following: str | None = state.get("next", start)
        pending: set[str] = set(state.get("pending") or [])
        currencies: dict[str, str] = dict(state.get("currencies") or {})
        restarts = 0
        seen = 0
        while True:
            try:
                answer = await self._sync(ctx, following)
            except _Restart:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise SourceUnavailable(
                        f"Plaid /transactions/sync: the data kept changing during pagination "
                        f"({MAX_RESTARTS} restarts)"
                    ) from None
                following = start
                continue
            for account in answer.get("accounts") or []:
                code = (account.get("balances") or {}).get("iso_currency_code")
                if isinstance(account.get("account_id"), str) and isinstance(code, str):
                    currencies[account["account_id"]] = code.upper()
            events = self._events(ctx, answer, pending, currencies)
            seen += sum(len(answer.get(k) or []) for k in ("added", "modified", "removed"))
            following = str(answer["next_cursor"])
            more = bool(answer.get("has_more"))
            cursor: dict[str, Any] = {
                "cursor": start if more else following,
                "pending": sorted(pending),
                "currencies": currencies,
            }
            if more:
                cursor["next"] = following
            yield Page(STREAM, events, cursor, seen=seen)
            if not more:
                return

    def _events(
        self,
        ctx: PullContext,
        answer: dict[str, Any],
        pending: set[str],
        currencies: dict[str, str],
    ) -> list[NewEvent]:
        wanted: dict[str, str] = dict(ctx.options.get("accounts") or {})
        zone: ZoneInfo = ctx.zone or ZoneInfo("UTC")
        fallback = str(ctx.options.get("currency") or "USD")
        events: list[NewEvent] = []
        for kind, type_ in (("added", ADDED), ("modified", MODIFIED)):
            for tx in answer.get(kind) or []:
                account = _account(tx.get("account_id"), wanted)
                if account is None:
                    continue
                if tx.get("pending") is True:
                    pending.add(str(tx["transaction_id"]))
                    continue
                line = _line(tx, account)
                original = _original(tx)
                external = str(tx["transaction_id"])
                if kind == "modified":
                    digest = hashlib.sha256(orjson.dumps(original, option=orjson.OPT_SORT_KEYS))
                    external = f"{external}:modified:{digest.hexdigest()[:16]}"
                events.append(
                    _event(
                        ctx,
                        type_,
                        external,
                        datetime.combine(date.fromisoformat(line["date"]), time(), zone),
                        {"line": line, "transaction": original},
                    )
                )
        now = ctx.now or datetime.now(UTC)
        for removed in answer.get("removed") or []:
            tid = str(removed["transaction_id"])
            if tid in pending:
                pending.discard(tid)
                continue
            account_id = removed.get("account_id")
            account = _account(account_id, wanted)
            if account is None:
                continue
            line = {
                "account": account,
                "date": now.astimezone(zone).date().isoformat(),
                "amount_minor": 0,
                "currency": currencies.get(str(account_id), fallback),
                "description": "",  # no payee: never a "duplicate" of another removal
                "memo": None,
                "transaction_id": tid,
            }
            events.append(
                _event(ctx, REMOVED, f"{tid}:removed", now, {"line": line, "removed": removed})
            )
        return events

    async def health_check(self, ctx: PullContext) -> str:
        """The keys and the Item's access token are accepted: one ``/transactions/sync`` call
        for a single transaction (a read: no cursor is stored)."""
        await self._sync(ctx, None, count=1)
        return "Plaid accepted the access token"

    async def _sync(
        self, ctx: PullContext, cursor: str | None, *, count: int | None = None
    ) -> dict[str, Any]:
        url = f"{self.base_url(ctx)}/transactions/sync"
        body: dict[str, Any] = {
            "client_id": ctx.credential("client_id"),
            "secret": ctx.credential("secret"),
            "access_token": ctx.credential("access_token"),
            "count": count or max(1, min(COUNT, ctx.page_size)),
        }
        if cursor is not None:
            body["cursor"] = cursor
        payload = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "Plaid-Version": "2020-09-14"}

        async def send() -> Response:
            return await ctx.transport.request("POST", url, headers, payload)

        response = await call(ctx, send, _judge)
        try:
            answer = json.loads(response.body, parse_float=Decimal)
        except ValueError as exc:
            raise SourceUnavailable("Plaid /transactions/sync: the answer is not JSON") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("next_cursor"), str):
            raise SourceUnavailable("Plaid /transactions/sync: the answer has no next_cursor")
        return answer


def _judge(response: Response) -> Response:
    """``response`` if it is a 200; ``_Restart`` for a mutation during pagination; else the
    error to retry or to stop at, by Plaid's ``error_type`` and the status."""
    if response.status == 200:
        return response
    try:
        error = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    code, kind = str(error.get("error_code") or ""), str(error.get("error_type") or "")
    if code == MUTATION:
        raise _Restart
    where = (
        f"Plaid /transactions/sync: HTTP {response.status}: {kind}/{code}: "
        f"{str(error.get('error_message') or '')[:300]}"
    )
    if response.status == 429 or response.status >= 500 or kind in _RETRIED_TYPES:
        raise SourceUnavailable(where)
    raise SourceRejected(where)


def _account(account_id: Any, wanted: dict[str, str]) -> str | None:
    if not isinstance(account_id, str):
        return None
    if not wanted:
        return account_id
    return wanted.get(account_id)


def _line(tx: dict[str, Any], account: str) -> dict[str, Any]:
    """The bank line of a posted transaction (money in positive), exactly."""
    currency = str(tx.get("iso_currency_code") or tx.get("unofficial_currency_code") or "")
    if len(currency) != 3:
        raise SourceUnavailable(f"Plaid transaction {tx.get('transaction_id')} has no currency")
    amount = tx.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise SourceUnavailable(f"Plaid transaction {tx.get('transaction_id')} has no amount")
    description = tx.get("merchant_name") or tx.get("name") or ""
    try:
        posted = date.fromisoformat(str(tx.get("date")))
        minor = minor_units(Decimal(amount), currency.upper())
    except ValueError as exc:
        raise SourceRejected(
            f"Plaid transaction {tx.get('transaction_id')} cannot be read: {exc}"
        ) from exc
    return {
        "account": account,
        "date": posted.isoformat(),
        "amount_minor": -minor,
        "currency": currency.upper(),
        "description": str(description),
        "memo": tx.get("name") if tx.get("merchant_name") else None,
        "transaction_id": str(tx["transaction_id"]),
    }


def _original(value: Any) -> Any:
    """``value`` as the event keeps it: fractions as their decimal text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _original(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_original(v) for v in value]
    return value


def _event(
    ctx: PullContext, type_: str, external_id: str, when: datetime, data: dict[str, Any]
) -> NewEvent:
    return NewEvent(
        tenant=ctx.tenant,
        source=ctx.source,
        external_id=external_id,
        type=type_,
        occurred_at=when,
        data=data,
        stream=f"{ctx.source}/{data['line']['transaction_id']}",
        meta={"pulled": True},
    )
