"""``/v1/reconciliation/...`` through a real server on 127.0.0.1, with scoped keys."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
from yarl import URL

from hub.api.context import HubContext
from hub.spi.reports import EXCEPTION_FIELDS as EXCEPTION_COLUMNS
from hub.spi.reports import PAYOUT_FIELDS as PAYOUT_COLUMNS
from hub.store import EventStore
from projections.reconciliation import Reconciliation
from tests.api.conftest import bearer, make_key
from tests.ledger.test_http import api, hub
from tests.reconciliation.harness import Recon, reconciliation_running
from tests.reconciliation.scenarios import statement, stripe_month

__all__ = ["api", "hub"]


async def _pages(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], name: str, **params: str
) -> list[list[dict[str, Any]]]:
    pages, after = [], None
    while True:
        query = {**params, **({"after": after} if after else {})}
        async with http.get(url, headers=headers, params=query) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        pages.append(page[name])
        after = page["next"]
        if after is None:
            return pages


async def test_payouts_and_exceptions_over_http_in_pages_json_and_csv(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    month = stripe_month()
    bank = statement(month)
    await recon.run(store, [*month.events, *bank.lines])
    read = bearer(await make_key(hub, "read"))
    other = bearer(await make_key(hub, "read", tenant="t2"))
    payouts_url = f"{api}/v1/reconciliation/payouts"
    exceptions_url = f"{api}/v1/reconciliation/exceptions"
    async with aiohttp.ClientSession() as http:
        pages = await _pages(http, payouts_url, read, "payouts", limit="4")
        late = await _pages(http, payouts_url, read, "payouts", status="missing_deposit",
                            **{"from": "2024-03-01", "to": "2024-03-31"})  # fmt: skip
        exceptions = await _pages(http, exceptions_url, read, "exceptions", limit="2")
        async with http.get(exceptions_url, headers={**read, "Accept": "text/csv"}) as response:
            csv_text = await response.text()
        async with http.get(payouts_url, headers={**read, "Accept": "text/csv"}) as response:
            payouts_csv = await response.text()
        async with http.get(payouts_url, headers=other) as response:
            someone_else = (await response.json())["payouts"]
        statuses = {}
        bad = [("status", {"status": "lost"}), ("from", {"from": "March"}),
               ("after", {"after": "nonsense"}), ("limit", {"limit": "0"})]  # fmt: skip
        for name, params in bad:
            async with http.get(payouts_url, headers=read, params=params) as response:
                assert response.content_type == "application/problem+json"
                statuses[name] = (response.status, name in await response.text())
        async with http.get(payouts_url) as response:
            anonymous = response.status
    rows = [row for page in pages for row in page]
    assert len(pages) > 2
    assert [r["payout_id"] for r in rows] == [p.payout_id for p in month.payouts]
    assert all(list(r) == list(PAYOUT_COLUMNS) for r in rows)
    assert [r["payout_id"] for page in late for r in page] == [bank.missing.payout_id]
    listed = [e for page in exceptions for e in page]
    assert all(list(e) == list(EXCEPTION_COLUMNS) for e in listed)
    assert sorted(e["kind"] for e in listed) == [
        "amount_mismatch", "missing_deposit", "unexplained_deposit"
    ]  # fmt: skip
    table = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["id"] for r in table] == [e["id"] for e in listed]
    assert csv_text.splitlines()[0] == ",".join(EXCEPTION_COLUMNS)
    assert len(payouts_csv.splitlines()) == len(month.payouts) + 1
    assert someone_else == []
    assert statuses == {name: (422, True) for name in statuses}
    assert anonymous == 401


async def test_resolving_an_exception_appends_an_event_the_projection_applies(
    dsn: str, store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    month = stripe_month(seed=5)
    bank = statement(month)
    read = bearer(await make_key(hub, "read"))
    resolver = bearer(await make_key(hub, "ingest:reconciliation:manual"))
    stripe_key = bearer(await make_key(hub, "ingest:stripe:acct_demo"))
    async with reconciliation_running(dsn), aiohttp.ClientSession() as http:
        await store.append([*month.events, *bank.lines])
        await recon.settle()
        [mismatch] = await recon.exceptions(kind="amount_mismatch")
        url = f"{api}/v1/reconciliation/resolutions"
        body = {"exception_id": mismatch["id"], "reason": "a bank fee of one cent, confirmed"}
        async with http.post(url, json=body, headers=read) as response:
            as_reader = response.status
        async with http.post(url, json=body, headers=stripe_key) as response:
            as_processor = response.status
        async with http.post(url, json={**body, "reason": ""}, headers=resolver) as response:
            no_reason = response.status
        async with http.post(
            url, json={**body, "exception_id": "nope"}, headers=resolver
        ) as response:
            unknown = response.status
        async with http.post(url, json=body, headers=resolver) as response:
            assert response.status == 202, await response.text()
            accepted = await response.json()
        await recon.settle()
        async with http.get(
            f"{api}/v1/reconciliation/exceptions", headers=read, params={"resolved": "true"}
        ) as response:
            resolved = (await response.json())["exceptions"]
        reopen = {**body, "resolved": False, "reason": "the bank says it was not a fee"}
        async with http.post(url, json=reopen, headers=resolver) as response:
            assert response.status == 202
        await recon.settle()
        still = await recon.exceptions(resolved=True)
        event = await recon.conn.fetchrow(
            "SELECT source, type, data::text AS data FROM ledgerhub.events WHERE position = $1",
            accepted["position"],
        )
    assert (as_reader, as_processor, no_reason, unknown) == (403, 403, 422, 404)
    assert [e["id"] for e in resolved] == [mismatch["id"]]
    assert resolved[0]["resolved"] is True
    assert event is not None  # the resolution was appended at the position the API answered
    assert event["source"] == "reconciliation:manual"
    assert event["type"] == "reconciliation.exception.resolved"
    assert mismatch["id"] in event["data"]
    assert still == []  # the latest event wins: reopened


async def test_before_any_worker_has_built_reconciliation_the_routes_answer_404(
    hub: HubContext, api: str
) -> None:
    read = bearer(await make_key(hub, "read"))
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/reconciliation/payouts", "/v1/reconciliation/exceptions"):
            async with http.get(f"{api}{path}", headers=read) as response:
                assert response.status == 404
                assert "not been built" in (await response.json())["detail"]


async def test_an_exception_kind_the_route_does_not_know_is_listed_not_a_500(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    # What a later version of the projection might store: a kind this route was not told of.
    await recon.conn.execute(
        f"INSERT INTO {Reconciliation.view('exceptions')} (tenant, id, kind, source, reference, "
        "currency, amount_minor, difference_minor, detail, due_date, timezone) VALUES "
        "('default', 'fx_drift:po_1', 'fx_drift', 'stripe:acct_demo', 'po_1', 'USD', 100, 3, "
        "'converted at another rate', NULL, 'UTC')"
    )
    read = bearer(await make_key(hub, "read"))
    url = f"{api}/v1/reconciliation/exceptions"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=read, params={"limit": "1000"}) as response:
            listed = (response.status, (await response.json())["exceptions"])
        async with http.get(url, headers=read, params={"kind": "fx_drift"}) as response:
            filtered = (response.status, (await response.json())["exceptions"])
        async with http.get(url, headers={**read, "Accept": "text/csv"}) as response:
            csv_status = response.status
        async with http.get(url, headers=read, params={"kind": "Not A Kind"}) as response:
            malformed = response.status
        async with http.get(f"{api}/openapi.json", headers=read) as response:
            spec = await response.json()
    assert listed[0] == 200
    assert "fx_drift" in {e["kind"] for e in listed[1]}
    assert filtered == (200, [e for e in listed[1] if e["kind"] == "fx_drift"])
    assert csv_status == 200
    assert malformed == 422
    documented = spec["components"]["schemas"]["ExceptionRow"]["properties"]["kind"]
    known = next(s["enum"] for s in documented["anyOf"] if "enum" in s)
    assert set(known) >= {"missing_deposit", "amount_mismatch", "document_missing"}
    assert {"type": "string"} in documented["anyOf"], "and any other kind"


async def _refused(response: aiohttp.ClientResponse) -> tuple[int, str | None]:
    """The status and the field the first error names (None when none is named)."""
    body = await response.json()
    return response.status, (body.get("errors") or [{}])[0].get("field")


async def test_text_postgresql_cannot_store_is_a_422_naming_the_parameter_never_a_500(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    """Issue 13, defect 4: ``%00`` reached asyncpg (CharacterNotInRepertoireError → 500)."""
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    read = bearer(await make_key(hub, "read"))
    resolver = bearer(await make_key(hub, "ingest:reconciliation:manual"))
    base = f"{api}/v1/reconciliation"
    gets = [
        ("processor", "clearing?processor=stripe%00"),
        ("after", "exceptions?after=a%00b"),
        ("after", "payouts?after=2024-03-01%7Cstripe%3Aacct_demo%7Cpo%00"),
        ("after", "clearing?after=2024-03-01%7Cstripe%00%7C1100%7CUSD"),
        ("id", "orders/1001%00"),
        ("tenant", "payouts?tenant=default%00"),
    ]
    refused, wanted = {}, {}
    async with aiohttp.ClientSession() as http:
        for field, tail in gets:
            async with http.get(URL(f"{base}/{tail}", encoded=True), headers=read) as response:
                refused[tail], wanted[tail] = await _refused(response), (422, field)
        for field, body in (
            ("exception_id", {"exception_id": "amount_mismatch\x00", "reason": "checked"}),
            ("reason", {"exception_id": "x", "reason": "checked \x00 twice"}),
        ):
            async with http.post(f"{base}/resolutions", json=body, headers=resolver) as response:
                refused[field], wanted[field] = await _refused(response), (422, field)
        key = {**resolver, "Idempotency-Key": "k" * 256}
        body = {"exception_id": "x", "reason": "checked"}
        async with http.post(f"{base}/resolutions", json=body, headers=key) as response:
            refused["key"], wanted["key"] = await _refused(response), (422, "Idempotency-Key")
    assert refused == wanted


async def test_an_empty_after_is_the_first_page_and_a_date_is_written_as_one(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    """Issue 13, defect 6: ``after=`` gave 422 where the document allowed it; ``as_of=0.0``,
    ``resolved=yes`` and ``limit=1.0`` were taken where the document says a date, a boolean and
    an integer."""
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    read = bearer(await make_key(hub, "read"))
    base = f"{api}/v1/reconciliation"
    async with aiohttp.ClientSession() as http:
        firsts = {}
        for name in ("payouts", "exceptions", "clearing"):
            async with http.get(f"{base}/{name}", headers=read) as response:
                absent = await response.json()
            async with http.get(f"{base}/{name}?after=", headers=read) as response:
                firsts[name] = (response.status, await response.json() == absent)
        miswritten = {}
        for query in ("as_of=0.0", "as_of=2024-03-01T00:00", "from=0", "resolved=yes",
                      "limit=1.0", "limit=%2B5", "limit=1&limit=2"):  # fmt: skip
            async with http.get(f"{base}/exceptions?{query}", headers=read) as response:
                miswritten[query] = response.status
        async with http.get(f"{base}/exceptions?as_of=2024-03-01", headers=read) as response:
            dated = response.status
    assert firsts == {name: (200, True) for name in firsts}
    assert set(miswritten.values()) == {422}, miswritten
    assert dated == 200


async def test_a_resolution_with_a_key_given_twice_or_loose_types_is_refused(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    """Duplicate JSON keys are refused (422 naming the key), never resolved by taking one."""
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    resolver = bearer(await make_key(hub, "ingest:reconciliation:manual"))
    url = f"{api}/v1/reconciliation/resolutions"
    raw = [
        b'{"exception_id": "x", "reason": "a", "reason": "b"}',
        b'{"exception_id": "x", "reason": "a", "resolved": 0}',
        b'{"exception_id": 5, "reason": "a"}',
    ]
    answers = []
    async with aiohttp.ClientSession() as http:
        for body in raw:
            headers = {**resolver, "Content-Type": "application/json"}
            async with http.post(url, data=body, headers=headers) as response:
                answers.append(await _refused(response))
    assert answers == [(422, "reason"), (422, "resolved"), (422, "exception_id")]
