"""Usage anomalies through a real server: each raises one alert POST at a local receiver, and
no more within the window; the rules' edges without a server."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime

import pytest

from hub.api import anomalies
from hub.api.anomalies import (
    BASELINE_BUCKETS,
    BUCKET_SECONDS,
    BURST_FLOOR,
    ESTABLISHED_USES,
    FAILURES_TO_WARN,
    AnomalyWatch,
    network_of,
)
from hub.api.context import HubContext
from hub.domain.keys import ApiKey, Scope, parse_network
from hub.telemetry import render
from tests.security.conftest import Clock, Receiver, create_key, get_from, serve


def anomaly_count(kind: str) -> float:
    """``ledgerhub_security_anomalies_total{kind}`` as /metrics would show it."""
    for line in render().decode().splitlines():
        if line.startswith("ledgerhub_security_anomalies_total{") and f'kind="{kind}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_key_used_from_a_new_network_after_a_history_raises_one_alert(
    hub: HubContext, receiver: Receiver
) -> None:
    key, stored = await create_key(hub, "read")
    before = anomaly_count("new_network")
    async with serve(hub) as served:
        url = f"{served.url}/v1/events"
        assert await get_from(url, key, "127.0.0.1", times=ESTABLISHED_USES) == [200] * 20
        assert await get_from(url, key, "127.0.0.2", times=5) == [200] * 5
        [post] = await receiver.wait_for(1)
        await served.watch.drain()  # whatever else was raised has been sent by now
    assert receiver.posts == [post], "one alert, however often the new network is used"
    details = post["ledgerhub"]
    assert details["kind"] == "security"
    assert details["anomaly"] == "new_network"
    assert details["key_id"] == str(stored.id)
    assert details["key_prefix"] == stored.prefix
    assert details["network"] == "127.0.0.2/32"
    assert details["known_networks"] == ["127.0.0.1/32"]
    assert stored.prefix in post["text"]
    assert key not in str(post), "never the key itself"
    assert anomaly_count("new_network") == before + 1


async def test_a_second_network_before_the_history_is_established_is_no_anomaly(
    hub: HubContext, receiver: Receiver
) -> None:
    key, _ = await create_key(hub, "read")
    async with serve(hub) as served:
        url = f"{served.url}/v1/events"
        assert await get_from(url, key, "127.0.0.1", times=3) == [200] * 3
        assert await get_from(url, key, "127.0.0.2", times=3) == [200] * 3
        await served.watch.drain()
    assert receiver.posts == []


async def test_the_networks_a_key_was_seen_from_outlive_the_process(
    hub: HubContext, receiver: Receiver
) -> None:
    """Written with the use counts: a restarted server knows the key's networks and use."""
    key, stored = await create_key(hub, "read")
    async with serve(hub) as served:
        url = f"{served.url}/v1/events"
        assert await get_from(url, key, "127.0.0.1", times=ESTABLISHED_USES) == [200] * 20
    assert await hub.keys.flush_usage() == 0, "written when the server stopped"
    row = await hub.keys.pool.fetchrow(
        "SELECT use_count, seen_networks FROM ledgerhub.api_keys WHERE id = $1", stored.id
    )
    assert row is not None
    assert row["use_count"] == ESTABLISHED_USES
    assert [str(n) for n in row["seen_networks"]] == ["127.0.0.1/32"]
    assert hub.key_cache is not None
    hub.key_cache.clear()  # as a new process: the key is looked up again
    async with serve(hub) as served:
        url = f"{served.url}/v1/events"
        assert await get_from(url, key, "127.0.0.1") == [200]
        await served.watch.drain()
        assert receiver.posts == [], "a network the key is known from"
        assert await get_from(url, key, "127.0.0.2") == [200]
        [post] = await receiver.wait_for(1)
    assert post["ledgerhub"]["anomaly"] == "new_network"


async def test_behind_a_trusted_proxy_the_forwarded_client_network_counts(
    hub: HubContext, receiver: Receiver
) -> None:
    key, _ = await create_key(hub, "read")
    async with serve(hub, trusted=[parse_network("127.0.0.2/32")]) as served:
        url = f"{served.url}/v1/events"
        proxy = "127.0.0.2"
        home = {"X-Forwarded-For": "203.0.113.7"}
        assert await get_from(url, key, proxy, ESTABLISHED_USES, home) == [200] * 20
        # another address of the same /24: the same network
        same = {"X-Forwarded-For": "203.0.113.99"}
        assert await get_from(url, key, proxy, 1, same) == [200]
        away = {"X-Forwarded-For": "198.51.100.9"}
        assert await get_from(url, key, proxy, 3, away) == [200] * 3
        [post] = await receiver.wait_for(1)
        await served.watch.drain()
    assert receiver.posts == [post]
    assert post["ledgerhub"]["network"] == "198.51.100.0/24"
    assert post["ledgerhub"]["known_networks"] == ["203.0.113.0/24"]


async def test_a_burst_far_above_the_usual_rate_raises_one_alert(
    hub: HubContext, receiver: Receiver
) -> None:
    key, stored = await create_key(hub, "read")
    clock = Clock()
    async with serve(hub, clock=clock) as served:
        url = f"{served.url}/v1/events"
        for _ in range(BASELINE_BUCKETS + 1):  # a usual rate: 2 requests per bucket
            assert await get_from(url, key, times=2) == [200, 200]
            clock.now += BUCKET_SECONDS
        await served.watch.drain()
        assert receiver.posts == [], "the usual rate is no anomaly"
        assert await get_from(url, key, times=BURST_FLOOR - 1) == [200] * (BURST_FLOOR - 1)
        await served.watch.drain()
        assert receiver.posts == [], "below the floor"
        assert await get_from(url, key, times=20) == [200] * 20
        [post] = await receiver.wait_for(1)
        clock.now += BUCKET_SECONDS  # still bursting in the next bucket: within the window
        assert await get_from(url, key, times=BURST_FLOOR + 5) == [200] * (BURST_FLOOR + 5)
        await served.watch.drain()
    assert receiver.posts == [post]
    details = post["ledgerhub"]
    assert (details["anomaly"], details["key_id"]) == ("rate_burst", str(stored.id))
    assert details["requests"] == BURST_FLOOR
    assert details["usual"] < 3


async def test_repeated_authentication_failures_from_one_address_raise_one_alert(
    hub: HubContext, receiver: Receiver
) -> None:
    async with serve(hub) as served:
        url = f"{served.url}/v1/events"
        statuses = await get_from(url, "lh_not-a-key", "127.0.0.2", times=FAILURES_TO_WARN * 2)
        assert statuses == [401] * (FAILURES_TO_WARN * 2)
        [post] = await receiver.wait_for(1)
        await served.watch.drain()
    assert receiver.posts == [post]
    details = post["ledgerhub"]
    assert (details["anomaly"], details["address"]) == ("auth_failures", "127.0.0.2")
    assert details["failures"] == FAILURES_TO_WARN
    assert details["key_id"] is None


# --- the rules, without a server ------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("203.0.113.250", "203.0.113.0/24"),
        ("198.51.100.9", "198.51.100.0/24"),
        ("::ffff:203.0.113.7", "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("127.0.0.2", "127.0.0.2/32"),
        ("::1", "::1/128"),
    ],
)
def test_networks_are_a_24_or_a_64_and_loopback_addresses_are_their_own(
    address: str, network: str
) -> None:
    assert network_of(ipaddress.ip_address(address)) == network


def _key(use_count: int = 0) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4(),
        tenant="default",
        scopes=(Scope.parse("read"),),
        prefix="lh_abcdef",
        created_at=datetime.now(UTC),
        expires_at=None,
        revoked_at=None,
        use_count=use_count,
    )


def test_a_stored_history_counts_towards_an_established_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key with its use counted in the database and a stored network is established at once
    in a new process."""
    watch = AnomalyWatch(Clock())
    key = _key(use_count=ESTABLISHED_USES)
    watch.key_used(key, "192.0.2.0/24", lambda: {"192.0.2.0/24"})
    assert not [r for r in caplog.records if "anomaly" in r.getMessage()]
    watch.key_used(key, "198.51.100.0/24", lambda: {"192.0.2.0/24"})
    (line,) = [r.getMessage() for r in caplog.records if "anomaly" in r.getMessage()]
    assert "lh_abcdef…" in line
    assert "198.51.100.0/24" in line


def test_idle_buckets_lower_the_usual_rate() -> None:
    rate = anomalies._Rate(bucket=0.0)
    for bucket in range(10):
        for _ in range(40):
            rate.add(bucket * BUCKET_SECONDS)
    rate.add(10 * BUCKET_SECONDS)
    busy = rate.baseline
    assert busy > 20
    rate.add(100 * BUCKET_SECONDS)  # 89 idle buckets
    assert rate.baseline < busy / 100
