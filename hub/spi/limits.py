"""``CallLimits``: an API's rate limits kept on the caller's side, for targets and pullers.

Most accounting APIs limit calls per organisation both in flight and per minute (Xero: 5 and
60; QuickBooks Online: 10 and 500) and answer 429 beyond them; staying under them costs less
than being throttled::

    limits = CallLimits(concurrent=5, per_minute=60)
    async with limits:
        ...  # one call
"""

from __future__ import annotations

import asyncio
import collections
import time


class CallLimits:
    """At most ``concurrent`` calls at once and ``per_minute`` started in any ``window``
    seconds (a sliding window)."""

    def __init__(self, concurrent: int, per_minute: int, window: float = 60) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._per_minute = per_minute
        self._window = window
        self._started: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            async with self._lock:
                now = time.monotonic()
                while self._started and now - self._started[0] >= self._window:
                    self._started.popleft()
                if len(self._started) >= self._per_minute:
                    await asyncio.sleep(self._window - (now - self._started[0]))
                    self._started.popleft()
                self._started.append(time.monotonic())
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._slots.release()
