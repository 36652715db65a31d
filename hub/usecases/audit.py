"""Recording operator actions in the audit trail, and reading it back (``hub.domain.audit``)."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hub.domain.audit import TRAIL_TYPES, Actor, AuditAction, AuditEntry, audit_event
from hub.store.audit import AuditLog
from hub.store.events import EventStore
from hub.store.projections import ProjectionStore


def local_actor() -> Actor:
    """The operator at this command line: ``cli:<OS user>`` from ``local:<hostname>``."""
    user = None
    with contextlib.suppress(OSError, KeyError, ImportError):  # no name for this uid
        user = getpass.getuser()
    return Actor.local(user or f"uid{os.getuid()}", socket.gethostname() or "localhost")


async def record(
    store: EventStore,
    action: AuditAction,
    actor: Actor,
    subject: Mapping[str, Any],
    *,
    tenant: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> int:
    """Append the audit event of ``action`` (before the action is done: see
    ``hub.domain.audit``); its position."""
    event = audit_event(action, actor, subject, at=datetime.now(UTC), tenant=tenant, meta=meta)
    [result] = await store.append([event])
    return result.position


async def trail(
    store: ProjectionStore,
    *,
    limit: int = 50,
    before: int | None = None,
    tenant: str | None = None,
) -> list[AuditEntry]:
    """The latest audit entries (and exception resolutions), newest first."""
    events = await AuditLog(store).latest(TRAIL_TYPES, limit=limit, before=before, tenant=tenant)
    return [AuditEntry.of(event) for event in events]


async def record_local(
    store: EventStore,
    action: AuditAction,
    subject: Mapping[str, Any],
    *,
    tenant: str | None = None,
) -> int:
    """``record`` for the operator at this command line (``local_actor``)."""
    return await record(store, action, local_actor(), subject, tenant=tenant)
