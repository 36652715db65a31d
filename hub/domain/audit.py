"""The audit trail: operator actions as events in the log.

Every operator action is appended to ``ledgerhub.events`` (through the event store, so the
hash chain, gap-free positions and idempotency hold for it as for any event) before the action
is carried out, with who did it and from where:

- ``audit.key.created`` — ``ledgerhub keys create`` (subject: ``key_id``, ``prefix``,
  ``tenant``, ``scopes``, ``allow_ips``, ``rate``, ``expires_at``, ``label``);
- ``audit.key.rotated`` — ``ledgerhub keys rotate`` (``key_id``, ``prefix``, ``new_key_id``,
  ``new_prefix``, ``overlap_seconds``);
- ``audit.key.revoked`` — ``ledgerhub keys revoke`` (``key_id``, ``prefix``);
- ``audit.projection.replay`` — ``POST /v1/projections/{name}/replay``, ``ledgerhub replay``
  (``projection``, ``from``, ``to``, ``send``, ``partition``);
- ``audit.projection.rebuild`` — ``POST /v1/projections/{name}/rebuild``, ``ledgerhub
  rebuild`` (``projection``, ``send``);
- ``audit.parked.retry`` / ``audit.parked.skip`` — ``POST /v1/parked/{id}/retry|skip``,
  ``ledgerhub parked retry|skip`` (``parked_id``, ``projection``, ``position``);
- ``audit.sync.run`` — ``ledgerhub sync run`` (``tenant``: the one asked for or null,
  ``tenants``: those with a target that the run covers).

Each is appended with source ``ledgerhub:audit`` (``AUDIT_SOURCE``), a fresh external id, and
``data`` = ``{"action", "by", "key_prefix", "from", "subject"}``:

- ``by`` — who: the id of the API key that authenticated the request, or, from the command
  line, ``cli:<OS user>`` (the CLI talks to the database directly, with no API key);
- ``key_prefix`` — the key's prefix (null from the CLI); never the key itself nor its hash;
- ``from`` — where: the client address as the API's key check resolves it (``--trust-proxy``
  honoured), or ``local:<hostname>`` from the command line.

The event's ``tenant`` is the tenant the action concerns (a key's tenant, a parked event's
tenant, the tenant a sync run was limited to), else the acting key's tenant; ``*`` for an action
over every tenant (replay, rebuild, an unrestricted sync run). No mapper knows the source, so
projections do not book these events (the ledger lists them as unmapped, which never parks).

The resolution of a reconciliation exception is already an event of its own
(``reconciliation.exception.resolved`` / ``.reopened``, source ``reconciliation:manual``); its
``meta`` carries ``key_id`` and ``client`` (the address), and the audit listing includes it
(``TRAIL_TYPES``).

Ordering: the audit event is appended first, then the action is done. The event log and the
tables an action changes (keys, jobs, parked events) are written by different transactions (the
log's appends go through its group commit), so the two cannot share one; appending first means
no action is ever left unaudited, at the price that an action failing after its audit event was
appended (a database error, a range the projection has not reached) leaves the record of an
attempt. Inputs are checked before the append where they can be, so that is rare.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.domain.events import NewEvent, RecordedEvent
from hub.domain.keys import ALL_TENANTS

AUDIT_SOURCE = "ledgerhub:audit"
"""The ``source`` of every audit event."""
RESOLUTION_SOURCE = "reconciliation:manual"
"""The source of an exception's resolution (appended by the reconciliation projection's route)."""
RESOLUTION_TYPES = ("reconciliation.exception.resolved", "reconciliation.exception.reopened")
MOVABLE_PARKED = frozenset({"parked", "retry", "skipped"})
"""The statuses a parked event can be retried or skipped from (``hub.store.parked``): an action
on one in any other status is refused, and so is not audited."""


class AuditAction(StrEnum):
    """An audited operator action; its event type is ``audit.<value>``."""

    KEY_CREATED = "key.created"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    REPLAY = "projection.replay"
    REBUILD = "projection.rebuild"
    PARKED_RETRY = "parked.retry"
    PARKED_SKIP = "parked.skip"
    SYNC_RUN = "sync.run"

    @property
    def event_type(self) -> str:
        """The type of the event recording this action."""
        return f"audit.{self.value}"


TRAIL_TYPES: tuple[tuple[str, str], ...] = (
    *((AUDIT_SOURCE, action.event_type) for action in AuditAction),
    *((RESOLUTION_SOURCE, kind) for kind in RESOLUTION_TYPES),
)
"""The (source, type) pairs the audit listing shows."""


@dataclass(frozen=True)
class Actor:
    """Who did an action and from where."""

    by: str
    """An API key's id, or ``cli:<OS user>``."""
    source_address: str
    """A client address, or ``local:<hostname>``."""
    key_prefix: str | None = None
    tenant: str = ALL_TENANTS
    """The acting key's tenant (``*`` from the command line)."""

    @classmethod
    def of_key(cls, key_id: uuid.UUID, prefix: str, tenant: str, address: str) -> Actor:
        """The holder of an API key, calling from ``address``."""
        return cls(by=str(key_id), source_address=address, key_prefix=prefix, tenant=tenant)

    @classmethod
    def local(cls, user: str, host: str) -> Actor:
        """An operator at the command line (no API key: the CLI talks to the database)."""
        return cls(by=f"cli:{user}", source_address=f"local:{host}")


def audit_event(
    action: AuditAction,
    actor: Actor,
    subject: Mapping[str, Any],
    *,
    at: datetime,
    tenant: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> NewEvent:
    """The event recording ``action`` by ``actor`` on ``subject`` (JSON values, never a key
    or secret), for ``tenant`` (default: the actor's)."""
    return NewEvent(
        tenant=tenant or actor.tenant,
        source=AUDIT_SOURCE,
        external_id=uuid.uuid4().hex,
        type=action.event_type,
        occurred_at=at,
        data={
            "action": action.value,
            "by": actor.by,
            "key_prefix": actor.key_prefix,
            "from": actor.source_address,
            "subject": dict(subject),
        },
        meta=dict(meta or {}),
    )


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail, read back from the log."""

    position: int
    at: datetime
    tenant: str
    action: str
    by: str | None
    key_prefix: str | None
    source_address: str | None
    subject: dict[str, Any]

    @classmethod
    def of(cls, event: RecordedEvent) -> AuditEntry:
        """The entry for an audit event or an exception's resolution."""
        if event.source == AUDIT_SOURCE:
            data = event.data
            return cls(
                position=event.position,
                at=event.recorded_at,
                tenant=event.tenant,
                action=str(data.get("action", event.type.removeprefix("audit."))),
                by=_text(data.get("by")),
                key_prefix=_text(data.get("key_prefix")),
                source_address=_text(data.get("from")),
                subject=dict(data.get("subject") or {}),
            )
        meta = event.meta
        return cls(
            position=event.position,
            at=event.recorded_at,
            tenant=event.tenant,
            action=event.type.removeprefix("reconciliation."),
            by=_text(meta.get("key_id")),
            key_prefix=_text(meta.get("api_key")),
            source_address=_text(meta.get("client")),
            subject={
                "exception_id": event.data.get("exception_id"),
                "reason": event.data.get("reason"),
            },
        )

    def as_json(self) -> dict[str, Any]:
        """The entry as JSON (``ledgerhub audit --json``, ``GET /v1/audit``)."""
        return {
            "position": self.position,
            "at": self.at.isoformat(),
            "tenant": self.tenant,
            "action": self.action,
            "by": self.by,
            "key_prefix": self.key_prefix,
            "from": self.source_address,
            "subject": self.subject,
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
