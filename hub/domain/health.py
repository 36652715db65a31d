"""Connection health as a state machine: what a check's result does to a connection's state,
and which alert, if any, it raises (pure: no clock, no I/O).

A connection is ``ok`` or ``failing`` since some time. Alerts go out once per change of state
and, while it stays failing, once more each ``remind_after``:

- first check, or ``ok`` → failing: ``failing`` alert;
- failing → failing: a ``reminder`` once ``remind_after`` has passed since the last alert;
- failing → ok: ``recovered`` alert;
- ok → ok (and a first check that is ok): nothing.

So a flapping check alerts on each flip, but a check failing every few seconds alerts once, then
once per ``remind_after``: never a storm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

HealthStateName = Literal["ok", "failing"]
AlertReason = Literal["failing", "reminder", "recovered"]


@dataclass(frozen=True)
class CheckResult:
    """What one check of one connection found."""

    connection: str
    tenant: str
    ok: bool
    detail: str
    """Words for a person: what was checked and what it found (never a secret)."""


@dataclass(frozen=True)
class ConnectionHealth:
    """A connection's recorded health."""

    connection: str
    tenant: str
    state: HealthStateName
    since: datetime
    """When it entered ``state``."""
    checked_at: datetime
    detail: str
    alerted_at: datetime | None = None
    """When its last alert went out (None: none since it was first checked)."""


@dataclass(frozen=True)
class Transition:
    """The state after a check, and the alert it raises (None: none)."""

    health: ConnectionHealth
    alert: AlertReason | None


def step(
    previous: ConnectionHealth | None,
    result: CheckResult,
    now: datetime,
    remind_after: timedelta,
) -> Transition:
    """The connection's health after ``result`` was found at ``now`` (see the module's rules)."""
    state: HealthStateName = "ok" if result.ok else "failing"
    if previous is None or previous.state != state:
        alert: AlertReason | None = (
            "failing" if state == "failing" else None if previous is None else "recovered"
        )
        health = ConnectionHealth(
            connection=result.connection,
            tenant=result.tenant,
            state=state,
            since=now,
            checked_at=now,
            detail=result.detail,
            alerted_at=now if alert is not None else None,
        )
        return Transition(health, alert)
    health = replace(previous, tenant=result.tenant, checked_at=now, detail=result.detail)
    if state == "failing" and (
        previous.alerted_at is None or now - previous.alerted_at >= remind_after
    ):
        return Transition(replace(health, alerted_at=now), "reminder")
    return Transition(health, None)


def alert_text(reason: AlertReason, health: ConnectionHealth) -> str:
    """The alert's one line for a person (Slack's ``text``)."""
    since = health.since.isoformat(timespec="seconds")
    if reason == "failing":
        return f"ledgerhub: connection {health.connection} is failing: {health.detail}"
    if reason == "reminder":
        return (
            f"ledgerhub: connection {health.connection} is still failing (since {since}): "
            f"{health.detail}"
        )
    return f"ledgerhub: connection {health.connection} has recovered: {health.detail}"
