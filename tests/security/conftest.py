"""A hub on 127.0.0.1 whose alerts go to a local receiver, and keys to call it with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hub.alerts import AlertChannel
from hub.api.app import build_app
from hub.api.auth import ANOMALIES, AnomalyWatch
from hub.api.context import ApiLimits, HubContext
from hub.api.server import open_hub
from hub.config import Config
from hub.config.file import AlertsSettings
from hub.domain.keys import ApiKey, Network, Scope, key_digest, key_prefix, new_key


@dataclass
class Receiver:
    """A local webhook receiving the hub's alert POSTs."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int, within: float = 10.0) -> list[dict[str, Any]]:
        """The POSTs once there are at least ``count`` (a bounded wait)."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.posts) >= count), within)
        return list(self.posts)

    def of(self, anomaly: str) -> list[dict[str, Any]]:
        """The POSTs about ``anomaly``."""
        return [p for p in self.posts if p["ledgerhub"].get("anomaly") == anomaly]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def hook(request: web.Request) -> web.Response:
        got = holder[0]
        body = await request.json()
        async with got.arrived:
            got.posts.append(body)
            got.arrived.notify_all()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    holder.append(Receiver(f"http://127.0.0.1:{port}/hook"))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()


@pytest.fixture
async def hub(
    dsn: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[HubContext]:
    monkeypatch.setenv("LEDGERHUB_TEST_ALERT_WEBHOOK", receiver.url)
    config = Config(alerts=AlertsSettings(webhook_url="env:LEDGERHUB_TEST_ALERT_WEBHOOK"))
    async with open_hub(dsn, config, ApiLimits()) as context:
        yield context


class Clock:
    """A clock the test moves (the anomaly watch's buckets and windows)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    """The served hub: its URL and the anomaly watch of its app."""

    url: str
    watch: AnomalyWatch


@contextlib.asynccontextmanager
async def serve(
    hub: HubContext, *, clock: Clock | None = None, trusted: Sequence[Network] = ()
) -> AsyncIterator[Served]:
    """``hub`` on a free port of 127.0.0.1 (as ``hub.api.server.serving``), its anomaly watch
    on ``clock`` when given."""
    app = build_app(hub, trusted_proxies=trusted, rate_limit=None)
    if clock is not None:
        app[ANOMALIES] = AnomalyWatch(clock, alerts=AlertChannel.from_config(hub.config))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield Served(f"http://127.0.0.1:{runner.addresses[0][1]}", app[ANOMALIES])
    finally:
        await runner.cleanup()


async def create_key(hub: HubContext, *scopes: str, tenant: str = "default") -> tuple[str, ApiKey]:
    """A key stored the way ``keys create`` stores it, and its record."""
    key = new_key()
    stored = await hub.keys.create(
        digest=key_digest(key),
        prefix=key_prefix(key),
        tenant=tenant,
        scopes=[Scope.parse(s) for s in scopes],
    )
    return key, stored


async def get_from(
    url: str,
    key: str,
    source_ip: str = "127.0.0.1",
    times: int = 1,
    headers: Mapping[str, str] | None = None,
) -> list[int]:
    """``GET url`` ``times`` times from ``source_ip`` (the client socket bound to it)."""
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0))
    statuses = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(times):
            async with session.get(
                url, headers={"Authorization": f"Bearer {key}", **(headers or {})}
            ) as response:
                statuses.append(response.status)
    return statuses
