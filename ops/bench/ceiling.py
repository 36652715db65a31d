"""The HTTP ceiling: what the bench's own clients get from an aiohttp server that does nothing.

``python ops/bench/ceiling.py`` serves ``POST /v1/events`` on 127.0.0.1 (a free port, printed as
``serving on http://…``) with a handler that reads the body and answers a fixed ``200``: no key,
no parse, no database, no log line, on uvloop when it is installed, as ``ledgerhub serve`` runs.
``ceiling_rate`` starts it and posts the same single-event bodies from the same 64 clients as
the HTTP rows do. With nothing behind the handler, what bounds that rate is the clients and
aiohttp themselves (the clients at a whole CPU in the runs measured): on the same machine the
hub, which runs the same clients and aiohttp and does its work besides, cannot answer more.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from aiohttp import web
from ingest import bodies, post_all

from hub.runtime.loop import use_uvloop

_ANSWER = b'{"results":[{"external_id":"x","status":"appended","position":1}]}'


async def _handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_ANSWER, content_type="application/json")


async def _serve() -> None:
    app = web.Application()
    app.router.add_post("/v1/events", _handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"serving on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


async def ceiling_rate(count: int, clients: int) -> float:
    """Events/s of ``count`` single-event POSTs from ``clients`` clients to the no-op server."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__)), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), 60)).decode()
        if "serving on " not in line:
            raise RuntimeError(f"the no-op server did not start: {line!r}")
        url = line.split("serving on ", 1)[1].strip()
        await post_all(url, "none", bodies(64, 1, "ceiling-warm"), 8)
        work = bodies(count, 1, "ceiling")
        started = time.perf_counter()
        await post_all(url, "none", work, clients)
        return count / (time.perf_counter() - started)
    finally:
        if server.returncode is None:
            server.terminate()
        try:
            await asyncio.wait_for(server.wait(), 10)
        except TimeoutError:
            server.kill()
            await server.wait()


if __name__ == "__main__":
    use_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
