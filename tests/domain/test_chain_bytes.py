"""The canonical bytes of an event, built from parts rendered before the event has a place in
the log (``link_body`` then ``assemble``, as the event store does), are exactly the JSON array
the hash chain has always covered: ``orjson.dumps`` of the fields in their fixed order."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.chain import ChainLink, assemble, canonical_bytes, link_body, rendered_time

texts = st.text(max_size=12)  # any code point: quotes, backslashes, controls, astral
json_texts = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
).map(lambda value: orjson.dumps(value).decode())
times = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-9, minutes=-30))]
    ),
)  # fmt: skip
links = st.builds(
    ChainLink,
    position=st.integers(1, 2**62),
    id=st.uuids(),
    tenant=texts,
    source=texts,
    external_id=texts,
    type=texts,
    stream=texts,
    stream_version=st.integers(1, 2**31 - 1),
    occurred_at=times,
    recorded_at=times,
    data_json=json_texts,
    meta_json=json_texts,
    raw=st.none() | st.binary(max_size=20),
)


def _as_always_defined(link: ChainLink) -> bytes:
    """The canonical bytes as the chain defines them (DESIGN, the event log's ``hash``)."""
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
            link.occurred_at.astimezone(UTC),
            link.recorded_at.astimezone(UTC),
            orjson.Fragment(link.data_json),
            orjson.Fragment(link.meta_json),
            None if link.raw is None else base64.b64encode(link.raw).decode("ascii"),
        ],
        option=orjson.OPT_UTC_Z,
    )


@given(links)
def test_parts_rendered_ahead_make_the_bytes_the_chain_has_always_covered(link: ChainLink) -> None:
    expected = _as_always_defined(link)
    assert canonical_bytes(link) == expected
    body = link_body(
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
    )
    recorded = rendered_time(link.recorded_at, "recorded_at")
    assert (
        assemble(body, position=link.position, stream_version=link.stream_version,
                 recorded_at=recorded)
        == expected
    )  # fmt: skip


def test_a_known_event_has_its_known_bytes() -> None:
    link = ChainLink(
        position=7,
        id=uuid.UUID("12345678-1234-4234-8234-123456789abc"),
        tenant="default",
        source="stripe:acct_1",
        external_id="evt_1",
        type="stripe.charge.succeeded",
        stream="stripe:acct_1/evt_1",
        stream_version=1,
        occurred_at=datetime(2026, 11, 1, 13, 0, 0, 250, tzinfo=timezone(timedelta(hours=1))),
        recorded_at=datetime(2026, 11, 2, tzinfo=UTC),
        data_json='{"amount": 1099}',
        meta_json="{}",
        raw=b"\x00\xff",
    )
    assert canonical_bytes(link) == (
        b'[7,"12345678-1234-4234-8234-123456789abc","default","stripe:acct_1","evt_1",'
        b'"stripe.charge.succeeded","stripe:acct_1/evt_1",1,"2026-11-01T12:00:00.000250Z",'
        b'"2026-11-02T00:00:00Z",{"amount": 1099},{},"AP8="]'
    )
