"""Xero's per-organisation limits, kept on the caller's side: 5 calls in flight, 60 a minute."""

from __future__ import annotations

from hub.spi.limits import CallLimits


class Limits(CallLimits):
    """At most ``concurrent`` calls at once and ``per_minute`` in any sliding minute."""

    def __init__(self, concurrent: int = 5, per_minute: int = 60, window: float = 60) -> None:
        super().__init__(concurrent, per_minute, window)
