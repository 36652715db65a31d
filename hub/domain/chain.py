"""The log's SHA-256 hash chain: ``hash(n) = sha256(hash(n-1) || canonical_bytes(event n))``.

The canonical bytes are built from exactly what the log stores, with ``data`` and ``meta`` taken
in PostgreSQL's own ``jsonb::text`` rendering. That rendering is deterministic (keys ordered,
numbers normalised), so a verifier reading the row years later rebuilds the same bytes without
having to reproduce how a client once spelled its JSON.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

GENESIS_HASH = bytes(32)
"""The 'previous hash' of position 1."""


@dataclass(frozen=True, slots=True)
class ChainLink:
    """The stored fields of one event that its hash covers, plus the hash itself."""

    position: int
    id: uuid.UUID
    tenant: str
    source: str
    external_id: str
    type: str
    stream: str
    stream_version: int
    occurred_at: datetime
    recorded_at: datetime
    data_json: str
    meta_json: str
    raw: bytes | None
    hash: bytes = b""


_UTC_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


class Unchainable(ValueError):
    """A field of the event has no canonical form (``field`` names it): the log cannot hold it.

    ``NewEvent`` refuses such values before they are appended; this is the chain's own guard.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


def _utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        # Only asyncpg's -infinity/infinity come back naive (datetime.min/max): they were
        # written for the UTC instants 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z,
        # which the log no longer accepts; read them as those instants on any host's time zone.
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00: no UTC instant in years 1-9999
        raise Unchainable(field, f"{value.isoformat()} is outside years 1-9999 in UTC") from exc


def canonical_bytes(link: ChainLink) -> bytes:
    """The bytes an event's hash covers: a JSON array in a fixed field order.

    Raises ``Unchainable`` for a time whose UTC instant is outside years 1-9999.
    """
    return orjson.dumps(
        [
            link.position,
            str(link.id),
            link.tenant,
            link.source,
            link.external_id,
            link.type,
            link.stream,
            link.stream_version,
            # orjson's RFC 3339 rendering (µs only when non-zero, "Z"), of the UTC instant
            _utc(link.occurred_at, "occurred_at"),
            _utc(link.recorded_at, "recorded_at"),
            orjson.Fragment(link.data_json),
            orjson.Fragment(link.meta_json),
            None if link.raw is None else base64.b64encode(link.raw).decode("ascii"),
        ],
        option=_UTC_OPTS,
    )


def event_hash(previous: bytes, link: ChainLink) -> bytes:
    """The hash of ``link`` chained onto ``previous``."""
    return hashlib.sha256(previous + canonical_bytes(link)).digest()
