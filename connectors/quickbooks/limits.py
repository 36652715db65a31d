"""QuickBooks Online's per-company limits, kept on the caller's side: at most 10 calls in
flight and 500 in any sliding minute (Intuit's throttles answer 429 beyond them)."""

from __future__ import annotations

from hub.spi.limits import CallLimits


class Limits(CallLimits):
    """At most ``concurrent`` calls at once and ``per_minute`` started in any ``window``."""

    def __init__(self, concurrent: int = 10, per_minute: int = 500, window: float = 60) -> None:
        super().__init__(concurrent, per_minute, window)
