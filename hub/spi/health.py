"""Connection health checks, as plugins declare them (DESIGN "Health and alerts").

Workers check every connection on a schedule (``[health] every``); a failing check raises an
alert (``hub.alerts``) once, a reminder while it stays failing, and a recovery. What a check
*is* belongs to the plugin:

- a puller (``hub.spi.puller.Puller``) overrides ``health_check(ctx)``: one cheap authenticated
  call through ``ctx.transport`` (credentials accepted, API reachable). It returns a few words
  saying what answered, and raises ``SourceRejected`` (a refused key) or ``SourceUnavailable``
  (unreachable, 5xx) when the connection is not healthy. A connection with the credentials its
  puller needs is checked this way;
- a connector whose connections only receive (webhooks, statement files) declares
  ``Connector.freshness``: the connection is failing when its newest event is older than
  ``max_age`` (the connection's ``health = { stale_after = "…" }`` overrides it);
- a target (``hub.spi.target.Target``) implements ``HealthCheckedTarget.health_check``: a token
  refresh or an organisation call, a file's writability. It raises the target's errors
  (``TargetUnavailable``, ``TargetRejected``, ``ConfigError``) when the target is not usable.
  Faults the sender meets on its own (a refused token, 5xx once retries are spent) are recorded
  the same way (``hub.runtime.health``).

Details are words for an operator: never a credential, never a payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DAY = 86400.0


@dataclass(frozen=True)
class Freshness:
    """A receiving connection's check: its newest event must be at most ``max_age`` old."""

    max_age: float
    """Seconds (the default; a connection's ``health.stale_after`` overrides it)."""
    event_types: tuple[str, ...] = ()
    """The event types that count, as patterns (``bank.line``, ``stripe.*``); none: any."""
    occurred: bool = False
    """Judge by the events' ``occurred_at`` (a statement line's date) rather than when the hub
    received them (a webhook's delivery)."""
    what: str = "event"
    """What the events are, for the detail (``webhook``, ``statement line``)."""


@runtime_checkable
class HealthCheckedTarget(Protocol):
    """A target that can say whether it is usable now, without writing anything."""

    async def health_check(self) -> str:
        """A few words on what answered; raise the target's error when it is not usable."""
        ...
