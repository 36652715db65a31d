"""OTLP export (``hub.telemetry``): a real ``serve`` with the standard ``OTEL_*`` variables
pointing at a local OTLP/HTTP receiver sends it the requests' spans and the ``ledgerhub.*``
metrics, named by ``OTEL_SERVICE_NAME``, while ``GET /metrics`` keeps answering; with export
intervals longer than the test, everything arrives because the process flushes as it stops."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg

from hub.telemetry import OtlpSettings
from tests.api.conftest import event_body, write_config
from tests.ops.harness import ROOT, hub_env, make_key, serving
from tests.ops.otlp_receiver import receiving
from tests.runtime.harness import wait_until


async def test_spans_and_metrics_reach_a_local_otlp_receiver_and_are_flushed_on_stop(
    dsn: str, tmp_path: Path
) -> None:
    ingest = await make_key(dsn, "ingest:*")
    operate = await make_key(dsn, "operate", tenant="*")
    events = [event_body(f"ch_otlp_{n}") for n in range(3)]
    async with receiving() as receiver:
        env = hub_env(
            dsn,
            write_config(tmp_path),
            tmp_path / "home",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_SERVICE_NAME="ledgerhub-ops-test",
            OTEL_METRIC_EXPORT_INTERVAL="600000",  # only the flush at shutdown sends them
            OTEL_BSP_SCHEDULE_DELAY="600000",
        )
        async with (
            serving(env, tmp_path / "serve.log", "--no-workers") as url,
            aiohttp.ClientSession() as http,
        ):
            post = {"Authorization": f"Bearer {ingest}"}
            async with http.post(f"{url}/v1/events", json={"events": events}, headers=post) as r:
                assert r.status == 200, await r.text()
            scrape = {"Authorization": f"Bearer {operate}"}
            async with http.get(f"{url}/metrics", headers=scrape) as r:
                assert r.status == 200
                exposition = await r.text()
        assert not receiver.refused, receiver.refused

    assert 'ledgerhub_events_appended_total{source="stripe:acct_1",tenant="default"} 3.0' in (
        exposition
    )
    assert receiver.services == {"ledgerhub-ops-test"}
    names = {span.name for span in receiver.spans}
    assert {"POST /v1/events", "GET /metrics"} <= names
    assert receiver.metrics["ledgerhub.events.appended"] == 3
    assert receiver.metrics["ledgerhub.http.server.request.duration"] == 2  # both requests
    assert receiver.metrics["ledgerhub.projection.status_up"] == 1  # the scrape read the status
    # the request's span is the trace its events carry
    conn = await asyncpg.connect(dsn)
    try:
        parents = await conn.fetch("SELECT meta->>'traceparent' AS p FROM ledgerhub.events")
    finally:
        await conn.close()
    traces = {row["p"].split("-")[1] for row in parents}
    posted = {span.trace_id for span in receiver.spans if span.name == "POST /v1/events"}
    assert len(traces) == 1
    assert traces == posted


def test_the_otel_variables_decide_what_is_exported() -> None:
    assert OtlpSettings.from_env({}) == OtlpSettings()
    both = OtlpSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert (both.traces, both.metrics, both.default_service_name) == (True, True, True)
    traces = OtlpSettings.from_env(
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "OTEL_SERVICE_NAME": "x"}
    )
    assert (traces.traces, traces.metrics, traces.default_service_name) == (True, False, False)
    off = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "none"}
    assert (OtlpSettings.from_env(off).traces, OtlpSettings.from_env(off).metrics) == (True, False)
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert OtlpSettings.from_env(disabled) == OtlpSettings()
    named = {"OTEL_EXPORTER_OTLP_ENDPOINT": " ", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}
    assert OtlpSettings.from_env(named) == OtlpSettings(default_service_name=False)


async def test_a_worker_exports_the_lag_gauges_over_otlp_without_any_scrape(
    dsn: str, tmp_path: Path
) -> None:
    """Nothing scrapes an OTLP-only deployment: the worker reads the projections' lag into the
    gauges on a timer, so they reach the collector (they would be absent otherwise)."""
    async with receiving() as receiver:
        env = hub_env(
            dsn,
            write_config(tmp_path),
            tmp_path / "home",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_METRIC_EXPORT_INTERVAL="300",
        )
        log = tmp_path / "worker.log"
        with log.open("ab") as stderr:
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub", "worker", "--no-sync", "--no-pull", "--no-health",
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        try:

            async def exported() -> bool:
                # status read (status_up 1) and the worker's projections registered (lag)
                metrics = receiver.metrics
                return (
                    metrics.get("ledgerhub.projection.status_up") == 1
                    and "ledgerhub.projection.lag_events" in metrics
                )

            await wait_until(exported, within=60, what="the lag gauges at the collector")
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.wait_for(worker.wait(), 30)
