"""A key given twice in one JSON object is refused (422 naming it), however the body is written,
and the quick test the route guard makes with orjson (``_no_key_twice``) never lets one by."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.api.context import HubContext
from hub.api.routing import _no_key_twice
from tests.api.conftest import bearer, event_body, make_key

# An object is a list of members as written (a key may repeat); "Members" tells it from an array.
KEYS = st.sampled_from(["a", "b", "a:b", ":", "ü", "k\\", 'q"'])
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(':ab\\"', max_size=6)


class Members(list[tuple[str, Any]]):
    """An object's members as the text writes them, duplicates kept."""


trees = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.lists(st.tuples(KEYS, inner), max_size=4).map(Members)
    ),
    max_leaves=14,
)


def _written(value: Any, escape_colons: bool, spaced: bool) -> str:
    """``value`` as JSON text; colons in strings written ``\\u003a`` when ``escape_colons``."""
    if isinstance(value, Members):
        sep = ": " if spaced else ":"
        inner = ", " if spaced else ","
        return (
            "{"
            + inner.join(
                _text(k, escape_colons) + sep + _written(v, escape_colons, spaced) for k, v in value
            )
            + "}"
        )
    if isinstance(value, list):
        return (
            "["
            + (", " if spaced else ",").join(_written(v, escape_colons, spaced) for v in value)
            + "]"
        )
    if isinstance(value, str):
        return _text(value, escape_colons)
    return json.dumps(value)


def _text(value: str, escape_colons: bool) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text.replace(":", "\\u003a") if escape_colons else text


def _has_key_twice(value: Any) -> bool:
    if isinstance(value, Members):
        keys = [k for k, _ in value]
        return len(set(keys)) < len(keys) or any(_has_key_twice(v) for _, v in value)
    if isinstance(value, list):
        return any(_has_key_twice(v) for v in value)
    return False


@settings(max_examples=400, deadline=None)
@given(trees, st.booleans(), st.booleans())
def test_the_quick_test_never_passes_a_key_given_twice(
    tree: Any, escape_colons: bool, spaced: bool
) -> None:
    raw = _written(tree, escape_colons, spaced).encode()
    passed = _no_key_twice(raw, orjson.loads(raw))
    if _has_key_twice(tree):
        assert not passed, raw
    elif b"\\\\" not in raw:
        # nothing written that counts a colon too high: a body without a key twice passes
        assert passed, raw


async def test_a_key_twice_inside_an_events_data_is_422_naming_it_and_nothing_is_written(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    good = orjson.dumps({"events": [event_body("evt_ok")]}).decode()
    twice = good.replace('"amount":1099', '"amount":1099,"amount":1')
    assert twice != good
    escaped = twice.replace('"currency":"usd"', '"currency":"u\\u003asd"')  # a colon, escaped
    assert escaped != twice
    for body in (twice, escaped):
        async with http.post(
            f"{api}/v1/events",
            data=body,
            headers={**bearer(key), "Content-Type": "application/json"},
        ) as r:
            answer = await r.json(content_type=None)
            assert r.status == 422, answer
            assert answer["errors"] == [
                {"index": 0, "field": "data.amount", "message": answer["errors"][0]["message"]}
            ]
            assert "twice" in answer["errors"][0]["message"]
    assert await hub.store.head() == 0
    async with http.post(
        f"{api}/v1/events", data=good, headers={**bearer(key), "Content-Type": "application/json"}
    ) as r:
        assert r.status == 200
    assert await hub.store.head() == 1
