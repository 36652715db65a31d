"""Input the log cannot hold, through a real server on 127.0.0.1 and a real PostgreSQL: each is a
4xx problem naming the field, and nothing of it is stored; values at the edges of what the log
holds are kept exactly as sent and the chain verifies.

- times whose UTC instant is outside years 1-9999 (``POST /v1/events`` and every webhook);
- signed webhooks carrying a NUL, an id over 500 characters or a very long type (all five
  providers), and Stripe's ``created`` or ``Stripe-Signature`` ``t=`` beyond any date;
- numbers that would not come back as written: integers beyond 64 bits, decimals with more
  digits than a 64-bit float keeps (the API and every webhook refuse them by their JSON path).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.domain.events import NewEvent, _suspect, exact_problems, inexact_numbers
from hub.usecases.verify import verify_chain
from tests.api import deliveries
from tests.api.conftest import (
    CONNECTIONS,
    SECRETS,
    SQUARE_URL,
    bearer,
    event_body,
    make_key,
)
from tests.factories import event
from tests.faults.conftest import Server

PROBLEM = "application/problem+json"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: dict[str, Any]

    def fields(self) -> set[str | None]:
        return {item["field"] for item in self.body.get("errors", [])}


async def answer_of(response: aiohttp.ClientResponse) -> Answer:
    raw = await response.read()
    return Answer(response.status, response.content_type, orjson.loads(raw) if raw else {})


async def post_raw(http: aiohttp.ClientSession, server: Server, key: str, body: bytes) -> Answer:
    """``POST /v1/events`` with ``body`` byte for byte (number literals a dict cannot carry)."""
    headers = {**bearer(key), "Content-Type": "application/json"}
    async with http.post(f"{server.url}/v1/events", data=body, headers=headers) as r:
        return await answer_of(r)


async def post_events(
    http: aiohttp.ClientSession, server: Server, key: str, events: list[dict[str, Any]]
) -> Answer:
    return await post_raw(http, server, key, orjson.dumps({"events": events}))


def assert_refused(answer: Answer, field: str, *, index: int | None = None) -> None:
    """A 422 problem whose errors name ``field`` (of event ``index`` when given)."""
    assert answer.status == 422, answer
    assert answer.content_type == PROBLEM
    assert answer.body["status"] == 422
    named = [item for item in answer.body["errors"] if item["field"] == field]
    assert named, answer.body
    if index is not None:
        assert named[0]["index"] == index, answer.body


async def stored_rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT external_id, data::text AS data, occurred_at FROM ledgerhub.events "
                "ORDER BY position"
            )
        )
    finally:
        await conn.close()


# ------------------------------------------------------------------ times (defect 1)


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        # the database driver would store these two instants as -infinity and infinity
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
async def test_a_time_outside_years_1_to_9999_in_utc_is_422_naming_occurred_at(
    server: Server, http: aiohttp.ClientSession, occurred_at: str
) -> None:
    key = await make_key(server.hub, "ingest:*")
    edges = {
        "edge-1": "0001-01-01T00:00:00.000001Z",
        "edge-2": "0001-01-01T00:00:00-14:00",
        "edge-3": "9999-12-31T23:59:59.999998Z",
        "edge-4": "9999-12-31T23:59:59.999999+14:00",
    }
    answer = await post_events(
        http, server, key, [event_body(e, occurred_at=t) for e, t in edges.items()]
    )
    assert answer.status == 200, answer  # the edges themselves are held
    stored = {r["external_id"]: r["occurred_at"] for r in await stored_rows(server.dsn)}
    assert stored == {e: datetime.fromisoformat(t) for e, t in edges.items()}

    refused = await post_events(
        http, server, key, [event_body("fine"), event_body("bad", occurred_at=occurred_at)]
    )
    assert_refused(refused, "occurred_at", index=1)
    assert "years 1 to 9999" in refused.body["errors"][0]["message"]
    assert await server.hub.store.head() == len(edges)  # nothing of the batch
    assert (await verify_chain(server.hub.store)).ok


def test_new_event_refuses_a_time_without_a_utc_instant() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        event("e", occurred_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))))
    with pytest.raises(ValidationError, match="occurred_at"):
        event("e", occurred_at=datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=14))))
    with pytest.raises(ValidationError, match="occurred_at"):  # asyncpg's -infinity
        event("e", occurred_at=datetime(1, 1, 1, tzinfo=UTC))
    assert event("e", occurred_at=datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC)).occurred_at.year == 1


# ------------------------------------------------------------------ webhooks


def resign(connector: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the provider's signature of ``body`` (a fresh one for Stripe)."""

    def b64(message: bytes) -> str:
        return base64.b64encode(
            hmac.new(SECRETS[connector], message, hashlib.sha256).digest()
        ).decode()

    headers = dict(headers)
    if connector == "stripe":
        t = int(time.time())
        digest = hmac.new(SECRETS["stripe"], f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        headers["Stripe-Signature"] = f"t={t},v1={digest}"
    elif connector == "shopify":
        headers["X-Shopify-Hmac-Sha256"] = b64(body)
    elif connector == "woocommerce":
        headers["X-WC-Webhook-Signature"] = b64(body)
    elif connector == "square":
        headers["x-square-hmacsha256-signature"] = b64(SQUARE_URL.encode() + body)
    else:
        headers["x-xero-signature"] = b64(body)
    return headers


Mutation = Callable[[dict[str, Any], dict[str, str]], None]
"""Changes a provider's sample delivery (its parsed body, its headers) in place."""

BUILDERS: dict[str, Callable[[], deliveries.Delivery]] = {
    "stripe": deliveries.stripe,
    "shopify": deliveries.shopify,
    "woocommerce": deliveries.woocommerce,
    "square": deliveries.square,
    "xero": deliveries.xero,
}


async def deliver(
    http: aiohttp.ClientSession,
    server: Server,
    connector: str,
    mutate: Mutation,
    *,
    literals: dict[str, bytes] | None = None,
) -> Answer:
    """A provider's sample delivery changed by ``mutate``, signed and sent. ``literals``
    replaces each ``"NAME"`` string in the body with raw bytes (numbers orjson cannot write)."""
    sample = BUILDERS[connector]()
    body: dict[str, Any] = orjson.loads(sample.body)
    headers = dict(sample.headers)
    mutate(body, headers)
    raw = orjson.dumps(body)
    for name, literal in (literals or {}).items():
        raw = raw.replace(orjson.dumps(name), literal)
    name = CONNECTIONS[connector].split(":", 1)[1]
    async with http.post(
        f"{server.url}/v1/webhooks/{connector}/{name}",
        data=raw,
        headers=resign(connector, raw, headers),
    ) as r:
        return await answer_of(r)


LONG_ID = "x" * 501
LONG_TYPE = "t" * 100_000
LONG_HEADER_TYPE = "t" * 8_000  # a header: within aiohttp's 8190-byte field limit


def _xero(change: Callable[[dict[str, Any]], None]) -> Mutation:
    return lambda body, headers: change(body["events"][0])


def _set(path: list[str], value: Any) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _header(name: str, value: str) -> Mutation:
    return lambda body, headers: headers.__setitem__(name, value)


# (connector, what) -> (the change, the field its 422 names)
UNHOLDABLE: dict[tuple[str, str], tuple[Mutation, str]] = {
    ("stripe", "nul"): (
        _set(["data", "object", "nickname"], "a\x00b"),
        "data.data.object.nickname",
    ),
    ("stripe", "long id"): (_set(["id"], LONG_ID), "external_id"),
    ("stripe", "long type"): (_set(["type"], LONG_TYPE), "type"),
    ("shopify", "nul"): (_set(["note"], "a\x00b"), "data.note"),
    ("shopify", "long id"): (_header("X-Shopify-Event-Id", LONG_ID), "external_id"),
    ("shopify", "long type"): (_header("X-Shopify-Topic", LONG_HEADER_TYPE), "type"),
    ("woocommerce", "nul"): (_set(["status"], "a\x00b"), "data.status"),
    ("woocommerce", "long id"): (_set(["date_modified_gmt"], LONG_ID), "external_id"),
    ("woocommerce", "long type"): (_header("X-WC-Webhook-Topic", LONG_HEADER_TYPE), "type"),
    ("square", "nul"): (_set(["merchant_id"], "a\x00b"), "data.merchant_id"),
    ("square", "long id"): (_set(["event_id"], LONG_ID), "external_id"),
    ("square", "long type"): (_set(["type"], LONG_TYPE), "type"),
    ("xero", "nul"): (_xero(lambda e: e.__setitem__("tenantType", "a\x00b")), "data.tenantType"),
    ("xero", "long id"): (_xero(lambda e: e.__setitem__("resourceId", LONG_ID)), "external_id"),
    ("xero", "long type"): (_xero(lambda e: e.__setitem__("eventCategory", LONG_TYPE)), "type"),
}


@pytest.mark.parametrize(("connector", "what"), list(UNHOLDABLE), ids=lambda v: str(v))
async def test_a_signed_delivery_the_log_cannot_hold_is_422_naming_the_field(
    server: Server, http: aiohttp.ClientSession, connector: str, what: str
) -> None:
    mutate, field = UNHOLDABLE[(connector, what)]
    answer = await deliver(http, server, connector, mutate)
    assert_refused(answer, field)
    assert answer.body["errors"][0]["index"] == 0  # the delivery's first event
    assert await server.hub.store.head() == 0
    # the genuine delivery still goes through
    assert (await deliver(http, server, connector, lambda body, headers: None)).status == 200


@pytest.mark.parametrize("created", [10**12, -(10**12), 2**63 - 1])
async def test_stripe_created_beyond_any_date_is_422_naming_created(
    server: Server, http: aiohttp.ClientSession, created: int
) -> None:
    answer = await deliver(http, server, "stripe", _set(["created"], created))
    assert_refused(answer, "created")
    assert await server.hub.store.head() == 0


@pytest.mark.parametrize(
    ("t", "signed"),
    [
        ("\u00b2", False),  # a digit to str.isdigit, not to int()
        ("9" * 5000, False),  # beyond int()'s 4300 digits
        ("9" * 400, True),  # a correct signature over a time no float can hold
    ],
    ids=["superscript two", "5000 digits", "400 digits signed"],
)
async def test_a_stripe_signature_time_that_is_no_time_is_401(
    server: Server, http: aiohttp.ClientSession, t: str, signed: bool
) -> None:
    sample = deliveries.stripe()
    digest = "00"
    if signed:
        digest = hmac.new(
            SECRETS["stripe"], t.encode() + b"." + sample.body, hashlib.sha256
        ).hexdigest()
    headers = {**sample.headers, "Stripe-Signature": f"t={t},v1={digest}"}
    name = CONNECTIONS["stripe"].split(":", 1)[1]
    async with http.post(
        f"{server.url}/v1/webhooks/stripe/{name}", data=sample.body, headers=headers
    ) as r:
        answer = await answer_of(r)
    assert answer.status == 401, answer
    assert answer.content_type == PROBLEM
    assert await server.hub.store.head() == 0


# (connector, time field) -> the change that puts it outside years 1-9999 in UTC
BAD_TIMES: dict[str, tuple[Mutation, str]] = {
    "shopify": (
        _header("X-Shopify-Triggered-At", "0001-01-01T00:00:00+14:00"),
        "X-Shopify-Triggered-At",
    ),
    "square": (_set(["created_at"], "9999-12-31T23:59:59-14:00"), "created_at"),
    "xero": (
        _xero(lambda e: e.__setitem__("eventDateUtc", "0001-01-01T00:00:00+14:00")),
        "eventDateUtc",
    ),
}


@pytest.mark.parametrize("connector", list(BAD_TIMES))
async def test_a_webhook_time_outside_years_1_to_9999_in_utc_is_422_naming_it(
    server: Server, http: aiohttp.ClientSession, connector: str
) -> None:
    mutate, field = BAD_TIMES[connector]
    answer = await deliver(http, server, connector, mutate)
    assert_refused(answer, field)
    assert await server.hub.store.head() == 0


# ------------------------------------------------------------------ numbers (defect 5)

BIG = b"123456789012345678901234567890"


@pytest.mark.parametrize(
    ("literal", "where", "field"),
    [
        (BIG, "data", "data.items.1.qty"),
        (b"-9223372036854775809", "data", "data.items.1.qty"),
        (b"18446744073709551616", "meta", "meta.items.1.qty"),
        (b"0.1000000000000000000001", "data", "data.items.1.qty"),
        (b"1e-400", "data", "data.items.1.qty"),
    ],
)
async def test_a_number_that_would_change_is_422_naming_its_path(
    server: Server, http: aiohttp.ClientSession, literal: bytes, where: str, field: str
) -> None:
    key = await make_key(server.hub, "ingest:*")
    await numbers_the_log_holds_are_kept_exactly(server, http, key)

    bad = event_body("bad")
    bad[where] = {"items": [{"qty": 1}, {"qty": "NUMBER"}]}
    body = orjson.dumps({"events": [event_body("fine"), bad]}).replace(b'"NUMBER"', literal)
    answer = await post_raw(http, server, key, body)
    assert_refused(answer, field, index=1)
    assert literal.decode()[:20] in answer.body["errors"][0]["message"]
    assert await server.hub.store.head() == 1  # the edges only: nothing of the batch


async def numbers_the_log_holds_are_kept_exactly(
    server: Server, http: aiohttp.ClientSession, key: str
) -> None:
    """The edges of what the log holds: stored, served and hashed exactly as sent."""
    data = (
        b'{"max": 18446744073709551615, "min": -9223372036854775808, '
        b'"float": 1e30, "long_float": 1000000000000000000000000000000.0, "tiny": 5e-324, '
        b'"price": 0.1, "id_as_text": "123456789012345678901234567890"}'
    )
    body = orjson.dumps({"events": [event_body("edges", data={"x": "DATA"})]})
    answer = await post_raw(http, server, key, body.replace(b'{"x":"DATA"}', data))
    assert answer.status == 200, answer
    [row] = await stored_rows(server.dsn)
    stored = orjson.loads(row["data"])
    assert stored["max"] == 2**64 - 1
    assert stored["min"] == -(2**63)
    assert stored["float"] == 1e30 == stored["long_float"]
    assert stored["tiny"] == 5e-324
    assert stored["price"] == 0.1
    assert stored["id_as_text"] == "123456789012345678901234567890"
    reader = await make_key(server.hub, "read")
    async with http.get(f"{server.url}/v1/events", headers=bearer(reader)) as r:
        served = orjson.loads(await r.read())["events"][0]["data"]
    assert served == stored
    assert (await verify_chain(server.hub.store)).ok


# (connector) -> where in the body an integer beyond 64 bits goes, and the field named
BIG_IN_WEBHOOK: dict[str, tuple[Mutation, str]] = {
    "stripe": (_set(["data", "object", "amount"], "BIG"), "data.object.amount"),
    "shopify": (_set(["total_weight"], "BIG"), "total_weight"),
    "woocommerce": (_set(["total"], "BIG"), "total"),
    "square": (
        _set(["data", "object", "payment", "amount_money", "amount"], "BIG"),
        "data.object.payment.amount_money.amount",
    ),
    "xero": (_xero(lambda e: e.__setitem__("n", "BIG")), "events.0.n"),
}


@pytest.mark.parametrize("connector", list(BIG_IN_WEBHOOK))
async def test_a_signed_delivery_with_an_integer_beyond_64_bits_is_422_naming_its_path(
    server: Server, http: aiohttp.ClientSession, connector: str
) -> None:
    mutate, field = BIG_IN_WEBHOOK[connector]
    answer = await deliver(http, server, connector, mutate, literals={"BIG": b"10" + b"0" * 29})
    assert_refused(answer, field)
    assert await server.hub.store.head() == 0


def test_new_event_refuses_numbers_the_log_cannot_hold() -> None:
    for value in (2**64, -(2**63) - 1, math.nan, math.inf):
        with pytest.raises(ValidationError, match=r"data"):
            event("e", data={"items": [{"n": value}]})
    with pytest.raises(ValidationError, match="meta"):
        event("e", meta={"n": 10**30})
    kept = event("e", data={"max": 2**64 - 1, "min": -(2**63)})
    assert kept.data == {"max": 2**64 - 1, "min": -(2**63)}
    assert isinstance(kept, NewEvent)


def test_inexact_numbers_names_each_path_in_document_order() -> None:
    body = (
        b'{"a": [1, 123456789012345678901234567890], "b": {"c": 0.1000000000000000000001},'
        b' "d": "12345678901234567890123", "e": 1.5, "f": 1e30}'
    )
    assert [p.field for p in inexact_numbers(body)] == ["a.1", "b.c"]
    assert inexact_numbers(b'{"n": 18446744073709551615, "m": -9223372036854775808}') == []
    assert inexact_numbers(b"not json 12345678901234567890") == []


_DIGITS = st.text("0123456789", min_size=1, max_size=40)
_LITERALS = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{int(whole)}{frac}{exp}",
    st.sampled_from(["", "-"]),
    _DIGITS,
    st.one_of(st.just(""), _DIGITS.map(lambda d: f".{d}")),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, d: f"{e}{s}{d}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.text("0123456789", min_size=1, max_size=4),
        ),
    ),
)
"""JSON number literals of any length, fraction and exponent."""


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_LITERALS, min_size=1, max_size=4),
    st.text("abcdeE0123456789-+. _", max_size=30),
)
def test_the_quick_screen_never_hides_a_number_that_would_change(
    literals: list[str], text: str
) -> None:
    """``inexact_numbers`` screens bodies before it parses them; what it answers is always what
    the full check answers, whatever the numbers and the text around them."""
    body = orjson.dumps({"text": text, "n": "NUMBERS"}).replace(
        b'"NUMBERS"', f"[{', '.join(literals)}]".encode()
    )
    assert inexact_numbers(body) == exact_problems(body)


def test_text_that_looks_like_an_exponent_is_no_alarm() -> None:
    """Words and ids next to digits (``order-1001``, ``invoice1234``) do not cost the full check:
    only an exponent after a digit, or a long run of digits, does."""
    assert not _suspect(b'{"external_id": "order-1001", "ref": "invoice1234", "n": 1.5e10}')
    assert _suspect(b'{"n": 1e400}')
    assert _suspect(b'{"n": -2.5E-308}')
    assert _suspect(b'{"n": 12345678901234567}')
