"""GET /metrics through a real server: append counters, projection gauges, sync series, auth.

The meter provider is one per process, so counters are compared before and after (deltas).
"""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub import telemetry
from hub.api.context import HubContext
from hub.errors import StoreUnavailable
from hub.runtime.gauges import refresh_projections
from hub.store.leases import Leases
from hub.store.projections import ProjectionStore
from tests.api.conftest import bearer, event_body, make_key
from tests.factories import event

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STRIPE = {"tenant": "default", "source": "stripe:acct_1"}


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition (raises if it does not parse)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series not (yet) exported."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: aiohttp.ClientSession, api: str, key: str) -> Samples:
    async with http.get(f"{api}/metrics", headers=bearer(key)) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse(await r.text())


async def test_append_counters_move_by_exactly_the_appended_and_duplicate_events(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    operator = await make_key(hub, "operate", tenant="*")
    ingest = await make_key(hub, "ingest:stripe:acct_1")
    before = await scrape(http, api, operator)

    first = [event_body(f"evt_{i}") for i in range(5)]
    again = [event_body("evt_1"), event_body("evt_3"), event_body("evt_new")]
    for batch in (first, again):
        async with http.post(
            f"{api}/v1/events", json={"events": batch}, headers=bearer(ingest)
        ) as r:
            assert r.status == 200
    after = await scrape(http, api, operator)

    def moved(name: str) -> float:
        return value(after, name, **STRIPE) - value(before, name, **STRIPE)

    assert moved("ledgerhub_events_appended_total") == 6
    assert moved("ledgerhub_events_duplicate_total") == 2
    other = {"tenant": "t2", "source": "stripe:acct_1"}
    assert value(after, "ledgerhub_events_appended_total", **other) == value(
        before, "ledgerhub_events_appended_total", **other
    )


async def test_projection_lag_and_parked_come_from_the_runtime_status(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    operator = await make_key(hub, "operate", tenant="*")
    await hub.store.append([event(f"e{i}") for i in range(7)])
    projections = ProjectionStore.over(hub.store)
    await projections.register("metrics_probe", side_effects=False)
    lease = await Leases(projections, "test", ttl=5).acquire("metrics_probe")
    assert lease is not None
    (third,) = await hub.store.read_after(2, limit=1)
    async with projections.batch(lease) as batch:
        await batch.create_generation(1, {}, 1, active=True)
        await batch.park(1, third, ValueError("bad row"), 1)
        await batch.advance(1, 4)

    samples = await scrape(http, api, operator)
    probe = {"projection": "metrics_probe"}
    assert value(samples, "ledgerhub_projection_lag_events", **probe) == 3
    assert value(samples, "ledgerhub_projection_lag_seconds", **probe) > 0
    assert value(samples, "ledgerhub_parked_events", **probe) == 1
    assert value(samples, "ledgerhub_projection_status_up") == 1

    await hub.store.append([event("e7")])
    samples = await scrape(http, api, operator)
    assert value(samples, "ledgerhub_projection_lag_events", **probe) == 4, "read at each scrape"


class _Broken:
    async def status(self) -> list[object]:
        raise StoreUnavailable("the database is away")


async def test_unreadable_status_drops_the_lag_series_instead_of_reporting_stale_ones() -> None:
    telemetry.projections.update([telemetry.ProjectionSnapshot("stale", 9, 1.0, 2)])
    assert (
        value(
            parse(telemetry.render().decode()),
            "ledgerhub_projection_lag_events",
            projection="stale",
        )
        == 9
    )
    await refresh_projections(_Broken())  # type: ignore[arg-type]
    samples = parse(telemetry.render().decode())
    assert ("ledgerhub_projection_lag_events", frozenset({("projection", "stale")})) not in samples
    assert value(samples, "ledgerhub_projection_status_up") == 0


async def test_sync_instruments_export_their_series_with_labels(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    operator = await make_key(hub, "operate", tenant="*")
    before = await scrape(http, api, operator)
    telemetry.sync.call("xero", "create_invoice", "ok", 0.2)
    telemetry.sync.call("xero", "create_invoice", "ok", 3.0)
    telemetry.sync.call("xero", "create_invoice", "rate_limited", 0.01)
    telemetry.sync.retry("xero")
    telemetry.sync.document("xero", "sent")
    telemetry.sync.document("beancount", "parked")
    after = await scrape(http, api, operator)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"target": "xero", "operation": "create_invoice", "outcome": "ok"}
    assert moved("ledgerhub_target_calls_total", **ok) == 2
    assert moved("ledgerhub_target_calls_total", **(ok | {"outcome": "rate_limited"})) == 1
    assert moved("ledgerhub_target_call_duration_seconds_count", **ok) == 2
    assert moved("ledgerhub_target_call_duration_seconds_sum", **ok) == pytest.approx(3.2)
    assert moved("ledgerhub_target_call_duration_seconds_bucket", **ok, le="0.25") == 1
    assert moved("ledgerhub_target_call_duration_seconds_bucket", **ok, le="5") == 2
    assert moved("ledgerhub_sync_retries_total", target="xero") == 1
    assert moved("ledgerhub_sync_documents_total", target="xero", outcome="sent") == 1
    assert moved("ledgerhub_sync_documents_total", target="beancount", outcome="parked") == 1


@pytest.mark.parametrize(
    ("scope", "tenant", "status"),
    [
        (None, None, 401),
        ("read", "default", 403),
        ("ingest:*", "default", 403),
        ("operate", "default", 403),
    ],
)
async def test_metrics_need_an_operate_key_for_all_tenants(
    api: str,
    hub: HubContext,
    http: aiohttp.ClientSession,
    scope: str | None,
    tenant: str | None,
    status: int,
) -> None:
    headers = {}
    if scope is not None and tenant is not None:
        headers = bearer(await make_key(hub, scope, tenant=tenant))
    async with http.get(f"{api}/metrics", headers=headers) as r:
        assert r.status == status
        assert "ledgerhub_events_appended" not in await r.text()


async def test_openapi_documents_metrics_as_prometheus_text(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "read")
    async with http.get(f"{api}/openapi.json", headers=bearer(key)) as r:
        spec = await r.json()
    get = spec["paths"]["/metrics"]["get"]
    assert get["security"] == [{"bearerKey": []}]
    assert list(get["responses"]["200"]["content"]) == ["text/plain; version=0.0.4"]
    assert {"401", "403"} <= set(get["responses"])


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_request_trace_id_is_carried_into_the_appended_events_meta(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    ingest = await make_key(hub, "ingest:stripe:acct_1")
    caller = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    async with http.post(
        f"{api}/v1/events",
        json={"events": [event_body("t1"), event_body("t2")]},
        headers=bearer(ingest) | caller,
    ) as r:
        assert r.status == 200
    for batch in ([event_body("t3")], [event_body("t4")]):
        async with http.post(
            f"{api}/v1/events", json={"events": batch}, headers=bearer(ingest)
        ) as r:
            assert r.status == 200
    t1, t2, t3, t4 = (e.meta["traceparent"] for e in await hub.store.read_after(0))
    assert t1 == t2, "one request, one span"
    version, trace_id, span_id, _ = t1.split("-")
    assert (version, trace_id) == ("00", TRACE_ID), "the caller's trace continues"
    assert span_id != "00f067aa0ba902b7", "in the hub's own server span"
    fresh = {t.split("-")[1] for t in (t3, t4)}
    assert len(fresh) == 2, "each request its own trace"
    assert TRACE_ID not in fresh
    assert "0" * 32 not in fresh
    parent = telemetry.context_from_meta({"traceparent": t3})
    with telemetry.tracer.start_as_current_span("projection batch", context=parent) as span:
        assert f"{span.get_span_context().trace_id:032x}" == t3.split("-")[1]
