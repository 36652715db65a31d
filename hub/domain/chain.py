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
    return assemble(
        link_body(
            id=link.id,
            tenant=link.tenant,
            source=link.source,
            external_id=link.external_id,
            type=link.type,
            stream=link.stream,
            occurred_at=link.occurred_at,
            data_json=link.data_json,
            meta_json=link.meta_json,
            raw=link.raw,
        ),
        position=link.position,
        stream_version=link.stream_version,
        recorded_at=rendered_time(link.recorded_at, "recorded_at"),
    )


@dataclass(frozen=True, slots=True)
class LinkBody:
    """The parts of an event's canonical bytes known before it has a place in the log (all
    but its position, stream version and recording time), already rendered.

    The event store renders them before it takes the log's lock, so that what it does under the
    lock is joining bytes and hashing (``assemble``)."""

    names: bytes
    """``"id","tenant","source","external_id","type","stream"``, as orjson writes them."""
    occurred_at: bytes
    rest: bytes
    """``data,meta,raw``: the payloads as given (PostgreSQL's rendering), ``raw`` base64."""


def link_body(
    *,
    id: uuid.UUID,
    tenant: str,
    source: str,
    external_id: str,
    type: str,
    stream: str,
    occurred_at: datetime,
    data_json: str,
    meta_json: str,
    raw: bytes | None,
) -> LinkBody:
    """``LinkBody`` of an event (``Unchainable`` for an ``occurred_at`` with no UTC instant in
    years 1-9999)."""
    names = orjson.dumps([str(id), tenant, source, external_id, type, stream])
    rest = orjson.dumps(
        [
            orjson.Fragment(data_json),
            orjson.Fragment(meta_json),
            None if raw is None else base64.b64encode(raw).decode("ascii"),
        ]
    )
    return LinkBody(names[1:-1], rendered_time(occurred_at, "occurred_at"), rest[1:-1])


def rendered_time(value: datetime, field: str) -> bytes:
    """A time as the canonical bytes hold it: orjson's RFC 3339 rendering of its UTC instant
    (µs only when non-zero, ``Z``), quoted."""
    return orjson.dumps(_utc(value, field), option=_UTC_OPTS)


def assemble(body: LinkBody, *, position: int, stream_version: int, recorded_at: bytes) -> bytes:
    """The canonical bytes of the event of ``body`` at ``position`` (``recorded_at`` rendered by
    ``rendered_time``): the JSON array ``[position, id, tenant, source, external_id, type,
    stream, stream_version, occurred_at, recorded_at, data, meta, raw]`` without spaces, as
    ``orjson.dumps`` writes it."""
    return b"[%d,%b,%d,%b,%b,%b]" % (
        position,
        body.names,
        stream_version,
        body.occurred_at,
        recorded_at,
        body.rest,
    )


def event_hash(previous: bytes, link: ChainLink) -> bytes:
    """The hash of ``link`` chained onto ``previous``."""
    return chained(previous, canonical_bytes(link))


def chained(previous: bytes, canonical: bytes) -> bytes:
    """The hash of an event of ``canonical`` bytes chained onto ``previous``."""
    return hashlib.sha256(previous + canonical).digest()
