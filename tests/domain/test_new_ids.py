"""``new_ids``: many event ids at once, each a random version-4 UUID like ``uuid.uuid4()``."""

from __future__ import annotations

import uuid

from hub.domain.events import new_ids


def test_new_ids_are_distinct_random_version_4_uuids() -> None:
    ids = new_ids(2000) + new_ids(2000)
    assert len(set(ids)) == 4000
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert new_ids(0) == []
