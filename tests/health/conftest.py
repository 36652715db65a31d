"""A local alert receiver (aiohttp on 127.0.0.1, answering like Slack's incoming webhooks) and
the hub's pool on the test's database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web

from hub.store.pool import create_pool


@dataclass
class Received:
    """One alert POST, as the receiver got it."""

    body: dict[str, Any]
    at: float
    """``time.monotonic()`` when it arrived."""

    @property
    def alert(self) -> dict[str, Any]:
        found: dict[str, Any] = self.body["ledgerhub"]
        return found


@dataclass
class AlertReceiver:
    """Slack's incoming webhook, as far as the hub relies on it: ``POST`` JSON, ``200 ok``;
    ``statuses`` answers the next requests with these statuses first (a 500 while it is down)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    attempts: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.statuses:
            return web.Response(status=self.statuses.popleft(), text="server_error")
        body = orjson.loads(await request.read())
        async with self.changed:
            self.received.append(Received(body, time.monotonic()))
            self.changed.notify_all()
        return web.Response(text="ok")

    def health(self, **wanted: Any) -> list[Received]:
        """The health alerts received whose ``ledgerhub`` fields have these values."""
        return [
            r
            for r in self.received
            if r.alert.get("kind") == "health"
            and all(r.alert.get(k) == v for k, v in wanted.items())
        ]

    async def wait_for(self, count: int, within: float = 30, **wanted: Any) -> list[Received]:
        """Wait (at most ``within`` seconds) until ``count`` matching alerts have arrived."""
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: len(self.health(**wanted)) >= count)
        return self.health(**wanted)


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[AlertReceiver]:
    """An ``AlertReceiver`` on a free port of 127.0.0.1 for the block."""
    receiver = AlertReceiver()
    app = web.Application()
    app.router.add_post("/hooks/alerts", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/alerts"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[AlertReceiver]:
    async with receiving() as found:
        yield found


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The hub's pool (role ``ledgerhub_app``) on the test's database."""
    created = await create_pool(dsn, max_size=4)
    try:
        yield created
    finally:
        await created.close()
