"""``hub.spi.limits.CallLimits``: never more calls in flight, nor more started in a window,
than allowed (what keeps Xero and QuickBooks from answering 429)."""

from __future__ import annotations

import asyncio
import time

from hub.spi.limits import CallLimits


async def test_calls_in_flight_and_per_window_are_bounded() -> None:
    limits = CallLimits(concurrent=2, per_minute=3, window=0.3)
    started: list[float] = []
    in_flight = 0
    most = 0
    release, two_in = asyncio.Event(), asyncio.Event()

    async def call() -> None:
        nonlocal in_flight, most
        async with limits:
            started.append(time.monotonic())
            in_flight += 1
            most = max(most, in_flight)
            if len(started) == 2:
                two_in.set()
            await release.wait()
            in_flight -= 1

    tasks = [asyncio.create_task(call()) for _ in range(4)]
    await two_in.wait()  # every task has run up to its first wait by now
    assert len(started) == 2  # the other two wait for a slot
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2
    # three may start in a window; the fourth waits until the first leaves it
    assert started[3] - started[0] >= 0.3
