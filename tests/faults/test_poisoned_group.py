"""A poisoned group: one bad request among many good ones coalesced into one group commit.

A real server on 127.0.0.1 and a real PostgreSQL. A blocker holds the log's lock while the
requests arrive, and each of the store's group commits (``WRITERS``) waits on it with a lead
request, so they all wait in the store's queue and are committed as one group when the lock is
released: the bad request is certainly a neighbour of every good one. Only it may fail
(a 4xx problem naming the field); every good request is 200 and stored once; the chain verifies.

No fixed sleep stands in for a state: each wait is on something observable, with a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from hub.store.events import EVENT_LOG_LOCK, WRITERS
from hub.usecases.verify import verify_chain
from tests.api.conftest import (
    CONNECTIONS,
    SECRETS,
    SQUARE_URL,
    bearer,
    event_body,
    make_key,
)
from tests.faults.conftest import Server, eventually

GOOD = 40
PATIENCE = 30.0
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: dict[str, Any]


async def answer_of(response: aiohttp.ClientResponse) -> Answer:
    raw = await response.read()
    return Answer(response.status, response.content_type, orjson.loads(raw) if raw else {})


Send = Callable[[aiohttp.ClientSession, str, str], Coroutine[Any, Any, Answer]]
"""Sends one request: (session, base URL, ingest key) -> its answer."""


@dataclass(frozen=True)
class Poison:
    """A request the log cannot hold as it is, and the field its 4xx must name."""

    send: Send
    field: str


def _b64_hmac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def api_event(**fields: Any) -> Send:
    async def send(http: aiohttp.ClientSession, url: str, key: str) -> Answer:
        body = {"events": [{**event_body("poison"), **fields}]}
        async with http.post(f"{url}/v1/events", json=body, headers=bearer(key)) as r:
            return await answer_of(r)

    return send


def api_raw(body: bytes) -> Send:
    """``POST /v1/events`` with ``body`` sent byte for byte (JSON a dict could not carry)."""

    async def send(http: aiohttp.ClientSession, url: str, key: str) -> Answer:
        headers = {**bearer(key), "Content-Type": "application/json"}
        async with http.post(f"{url}/v1/events", data=body, headers=headers) as r:
            return await answer_of(r)

    return send


def webhook(connector: str, body: bytes, headers: Callable[[], dict[str, str]]) -> Send:
    async def send(http: aiohttp.ClientSession, url: str, key: str) -> Answer:
        name = CONNECTIONS[connector].split(":", 1)[1]
        async with http.post(
            f"{url}/v1/webhooks/{connector}/{name}", data=body, headers=headers()
        ) as r:
            return await answer_of(r)

    return send


def raw_http(connector: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> Send:
    """A webhook sent over a plain socket, so header bytes need not be UTF-8."""

    async def send(http: aiohttp.ClientSession, url: str, key: str) -> Answer:
        host, port = url.removeprefix("http://").split(":")
        name = CONNECTIONS[connector].split(":", 1)[1]
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            lines = [
                f"POST /v1/webhooks/{connector}/{name} HTTP/1.1".encode(),
                f"Host: {host}:{port}".encode(),
                b"Content-Type: application/json",
                f"Content-Length: {len(body)}".encode(),
                b"Connection: close",
                *(k + b": " + v for k, v in headers),
            ]
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            await writer.drain()
            response = await reader.read()
        finally:
            writer.close()
        head, _, payload = response.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        content_type = next(
            (
                line.split(b":", 1)[1].strip().split(b";")[0].decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-type:")
            ),
            "",
        )
        return Answer(status, content_type, orjson.loads(payload) if payload else {})

    return send


_SHOPIFY_ORDER = orjson.dumps({"id": 820982911946154508, "total_price": "10.00"})


def shopify_triggered_at(value: str) -> Poison:
    headers = {
        "X-Shopify-Hmac-Sha256": _b64_hmac(SECRETS["shopify"], _SHOPIFY_ORDER),
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Event-Id": "poison",
        "X-Shopify-Triggered-At": value,
        "Content-Type": "application/json",
    }
    return Poison(webhook("shopify", _SHOPIFY_ORDER, lambda: headers), "X-Shopify-Triggered-At")


def shopify_event_id_not_utf8() -> Poison:
    """An event id header whose bytes are not UTF-8 (the server reads them as surrogates)."""
    headers = [
        (b"X-Shopify-Hmac-Sha256", _b64_hmac(SECRETS["shopify"], _SHOPIFY_ORDER).encode()),
        (b"X-Shopify-Topic", b"orders/paid"),
        (b"X-Shopify-Event-Id", b"poison-\xff\xfe"),
    ]
    return Poison(raw_http("shopify", _SHOPIFY_ORDER, headers), "external_id")


def square(field: str, **fields: Any) -> Poison:
    """A Square notification with ``fields`` changed; its 4xx must name ``field``."""
    notification = {
        "event_id": "poison",
        "type": "payment.updated",
        "created_at": "2026-11-01T12:00:00Z",
        "data": {"type": "payment", "id": "pay_1", "object": {}},
    }
    notification.update(fields)
    body = orjson.dumps(notification)
    headers = {
        "x-square-hmacsha256-signature": _b64_hmac(SECRETS["square"], SQUARE_URL.encode() + body),
        "Content-Type": "application/json",
    }
    return Poison(webhook("square", body, lambda: headers), field)


def xero_event_date(value: str) -> Poison:
    item = {
        "resourceUrl": "https://api.xero.com/api.xro/2.0/CreditNotes/1",
        "resourceId": "1",
        "eventDateUtc": value,
        "eventType": "CREATE",
        "eventCategory": "CREDITNOTE",
        "tenantId": "t-1",
        "tenantType": "ORGANISATION",
    }
    body = orjson.dumps({"events": [item], "firstEventSequence": 1, "lastEventSequence": 1})
    headers = {"x-xero-signature": _b64_hmac(SECRETS["xero"], body)}
    return Poison(webhook("xero", body, lambda: headers), "eventDateUtc")


def stripe_raw(body: bytes, field: str) -> Poison:
    def headers() -> dict[str, str]:  # signed when sent: the scheme judges freshness
        t = int(time.time())
        sig = hmac.new(SECRETS["stripe"], f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}

    return Poison(webhook("stripe", body, headers), field)


def stripe_event(created: int = 1_790_000_000, amount: int = 100) -> bytes:
    return (
        b'{"id": "evt_poison", "object": "event", "type": "charge.succeeded", "created": '
        + str(created).encode()
        + b', "data": {"object": {"id": "ch_poison", "object": "charge", "amount": '
        + str(amount).encode()
        + b"}}}"
    )


def wide(length: int, seed: int) -> str:
    """``length`` characters of 4 UTF-8 bytes each that hardly compress."""
    symbols = random.Random(seed)
    return "".join(chr(symbols.randrange(0x1F300, 0x1FAFF)) for _ in range(length))


POISONS: dict[str, Poison] = {
    # valid to the model, refused by the database inside the group's transaction (an index
    # entry holds at most 2704 bytes): the one poison that still reaches the group commit
    "api idempotency key too long for its index": Poison(
        api_event(source=wide(200, 1), external_id=wide(500, 2)), "tenant, source, external_id"
    ),
    "api occurred_at year 1 at +14:00": Poison(
        api_event(occurred_at="0001-01-01T00:00:00+14:00"), "occurred_at"
    ),
    "api occurred_at 9999-12-31 at -14:00": Poison(
        api_event(occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at"
    ),
    "api integer beyond 64 bits": Poison(
        api_raw(
            b'{"events": [{"source": "stripe:acct_1", "external_id": "poison", '
            b'"type": "stripe.charge.succeeded", "occurred_at": "2026-11-01T12:00:00Z", '
            b'"data": {"n": 123456789012345678901234567890}}]}'
        ),
        "data.n",
    ),
    "shopify X-Shopify-Triggered-At": shopify_triggered_at("0001-01-01T00:00:00+14:00"),
    "shopify event id not UTF-8": shopify_event_id_not_utf8(),
    "square created_at": square("created_at", created_at="9999-12-31T23:59:59-14:00"),
    # the log's field: the notification's event_id is the event's external_id
    "square event_id over 500 characters": square("external_id", event_id="e" * 600),
    "xero eventDateUtc": xero_event_date("0001-01-01T00:00:00+14:00"),
    "stripe created 10**12": stripe_raw(stripe_event(created=10**12), "created"),
    "stripe amount 10**30": stripe_raw(stripe_event(amount=10**30), "data.object.amount"),
}


async def good_request(http: aiohttp.ClientSession, url: str, key: str, n: int) -> Answer:
    body = {"events": [event_body(f"good-{n}")]}
    async with http.post(f"{url}/v1/events", json=body, headers=bearer(key)) as r:
        return await answer_of(r)


@pytest.mark.parametrize("poison", list(POISONS.values()), ids=list(POISONS))
async def test_one_bad_request_fails_alone_in_a_group_commit(
    server: Server, poison: Poison
) -> None:
    key = await make_key(server.hub, "ingest:*")
    store = server.hub.store
    blocker = await asyncpg.connect(server.dsn)
    watcher = await asyncpg.connect(server.dsn)
    hold = blocker.transaction()
    await hold.start()
    held = True
    await blocker.execute("SELECT pg_advisory_xact_lock($1)", EVENT_LOG_LOCK)

    async def writers_wait_on_the_lock(count: int) -> bool:
        waiting = await watcher.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return waiting == count and not store._queue

    try:
        async with aiohttp.ClientSession() as http:
            # a lead request for each of the store's group commits, each inside its transaction
            # and waiting on the lock, so that what comes next queues behind them
            leads = []
            for n in range(WRITERS):
                leads.append(asyncio.create_task(good_request(http, server.url, key, -n)))
                await eventually(
                    functools.partial(writers_wait_on_the_lock, n + 1),
                    within=PATIENCE,
                    what=f"{n + 1} writer(s) to wait on the lock",
                )
            goods = [
                asyncio.create_task(good_request(http, server.url, key, n))
                for n in range(1, GOOD // 2 + 1)
            ]
            bad = asyncio.create_task(poison.send(http, server.url, key))
            goods += [
                asyncio.create_task(good_request(http, server.url, key, n))
                for n in range(GOOD // 2 + 1, GOOD + 1)
            ]

            async def all_queued() -> bool:
                # the bad request is either queued with the good ones or already refused
                queued = len(store._queue)
                return queued == GOOD + 1 or (bad.done() and queued == GOOD)

            await eventually(
                all_queued, within=PATIENCE, what=f"{GOOD} good requests and the bad one to queue"
            )
            # the leads commit, then the first writer free takes every queued request at once
            await hold.rollback()
            held = False
            answers = await asyncio.gather(*leads, *goods)
            refused = await bad
    finally:
        if held:
            await hold.rollback()
        await blocker.close()
        await watcher.close()

    assert 400 <= refused.status < 500, refused
    assert refused.content_type == PROBLEM
    assert refused.body["status"] == refused.status
    assert poison.field in {item["field"] for item in refused.body.get("errors", [])}, refused
    sent = GOOD + WRITERS
    assert [a.status for a in answers] == [200] * sent, [a for a in answers if a.status != 200][:3]
    assert all(a.body["results"][0]["status"] == "appended" for a in answers)
    stored = await store.read_after(0, limit=1000)
    assert sorted(e.external_id for e in stored) == sorted(
        f"good-{n}" for n in range(1 - WRITERS, GOOD + 1)
    )
    positions = sorted(a.body["results"][0]["position"] for a in answers)
    assert positions == list(range(1, sent + 1))
    report = await verify_chain(store)
    assert report.ok, report.reason
    assert report.checked == sent

    # the group commit goes on serving
    async with aiohttp.ClientSession() as http:
        after = await good_request(http, server.url, key, GOOD + 1)
    assert after.status == 200
    assert after.body["results"][0]["position"] == sent + 1
