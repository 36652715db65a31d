"""The shared schedule and the state under concurrency (real PostgreSQL): one worker checks a
connection per period, two processes recording the same change alert once, a sender's fault
holds a target failing until a send works, and a receiving connection goes stale."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from hub.alerts import AlertChannel
from hub.config import load_config
from hub.domain.events import NewEvent
from hub.domain.health import CheckResult
from hub.runtime.health import GAUGE, HealthMonitor, check_now, health_forever
from hub.store import EventStore
from hub.store.health import HealthStore
from hub.telemetry import render
from tests.health.conftest import AlertReceiver
from tests.runtime.harness import wait_until

REMIND = timedelta(hours=4)


async def test_one_of_several_workers_claims_a_check_per_period(pool: asyncpg.Pool) -> None:
    store = HealthStore(pool)
    claims = await asyncio.gather(*(store.claim("default", "stripe:a", 3600) for _ in range(8)))
    assert claims.count(True) == 1
    assert not await store.claim("default", "stripe:a", 3600)
    assert await store.claim("t2", "stripe:a", 3600)  # another tenant's is its own
    due = await store.next_due([("default", "stripe:a"), ("default", "never:checked")])
    assert due == 0.0
    assert 3500 < (await store.next_due([("default", "stripe:a")]) or 0) <= 3600


async def test_concurrent_records_of_a_change_alert_once(pool: asyncpg.Pool) -> None:
    store = HealthStore(pool)
    ok = CheckResult("stripe:a", "default", True, "fine")
    await store.record(ok, REMIND)
    failing = CheckResult("stripe:a", "default", False, "HTTP 401")
    changes = await asyncio.gather(*(store.record(failing, REMIND) for _ in range(6)))
    assert [c.alert for c in changes if c is not None and c.alert] == ["failing"]
    first = await asyncio.gather(
        *(store.record(CheckResult("shopify:b", "default", False, "x"), REMIND) for _ in range(6))
    )
    assert [c.alert for c in first if c is not None and c.alert] == ["failing"]


async def test_a_sender_fault_holds_the_target_failing_until_a_send_works(
    pool: asyncpg.Pool, tmp_path: Path, receiver: AlertReceiver
) -> None:
    (tmp_path / "ledgerhub.toml").write_text("")
    config = load_config(tmp_path / "ledgerhub.toml")
    monitor = HealthMonitor(pool, config, AlertChannel(receiver.url))
    await monitor.target_sent("default", "xero")  # no fault held: nothing recorded
    assert await monitor.store.all() == []
    await monitor.record(CheckResult("sync:xero", "default", True, "Xero answered"))
    await monitor.target_fault("default", "xero", "Xero refused the refresh token (HTTP 400)")
    await monitor.target_fault("default", "xero", "Xero refused the refresh token (HTTP 400)")
    # a passing check does not end the sender's fault (that would flap every round)
    await monitor.record(CheckResult("sync:xero", "default", True, "Xero answered"))
    [held] = await monitor.store.all()
    assert (held.state, held.detail) == ("failing", "Xero refused the refresh token (HTTP 400)")
    await monitor.target_sent("default", "xero")
    [back] = await monitor.store.all()
    assert back.state == "ok"
    assert [(r.alert["connection"], r.alert["state"]) for r in receiver.received] == [
        ("sync:xero", "failing"),
        ("sync:xero", "recovered"),
    ]


async def _bank_config(tmp_path: Path, stale_after: str) -> Path:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(
        '[[connections]]\nid = "bank:checking"\nconnector = "bank"\nledger_account = "1000"\n'
        f'health = {{ stale_after = "{stale_after}" }}\n'
        '[[connections]]\nid = "payroll:gusto"\nconnector = "payroll"\n'
        "health = { check = false }\n"
    )
    return path


def _line(day: str, external_id: str) -> NewEvent:
    return NewEvent(
        tenant="default",
        source="bank:checking",
        external_id=external_id,
        type="bank.line",
        stream="bank:checking",
        occurred_at=f"{day}T00:00:00Z",
        data={"account": "checking", "amount_minor": 1000, "currency": "USD", "date": day},
    )


async def test_a_bank_statement_older_than_stale_after_is_failing(
    pool: asyncpg.Pool, store: EventStore, tmp_path: Path, receiver: AlertReceiver
) -> None:
    config = load_config(await _bank_config(tmp_path, "30d"))
    channel = AlertChannel(receiver.url)
    [none_yet] = await check_now(pool, config, tmp_path, channel=channel)
    assert none_yet.ok
    assert none_yet.detail.startswith("no statement line yet")
    await store.append([_line("2024-01-31", "line-1")])
    [stale] = await check_now(pool, config, tmp_path, channel=channel)
    assert not stale.ok
    assert stale.connection == "bank:checking"  # payroll's check is off
    assert "the newest statement line is" in stale.detail
    assert "(expected within 30d)" in stale.detail
    [alert] = await receiver.wait_for(1, state="failing")
    assert alert.alert["connection"] == "bank:checking"


async def test_the_schedule_records_and_the_gauge_reports(
    pool: asyncpg.Pool, store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGERHUB_HEALTH_TICK", "0.1")
    await store.append([_line("2024-01-31", "line-1")])
    config = load_config(await _bank_config(tmp_path, "1d"))
    task = asyncio.create_task(health_forever(pool, config, tmp_path, channel=AlertChannel(None)))

    async def reported() -> bool:
        return any(h.connection == "bank:checking" for h in GAUGE._snapshot)

    try:
        await wait_until(reported, within=20, what="the gauge to report the bank connection")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    text = render().decode()
    assert 'ledgerhub_connection_failing{connection="bank:checking",tenant="default"} 1.0' in text
