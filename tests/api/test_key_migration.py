"""Migration 0019 turns every single-scope key into a key holding that one scope."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub.store import schema
from hub.store.keys import KeyStore
from hub.testing.postgres import Databases


@pytest.fixture
async def empty_dsn(databases: Databases) -> AsyncIterator[str]:
    url = await databases.create(migrated=False)
    yield url
    await databases.drop(url)


async def test_single_scope_keys_survive_the_migration(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = schema.available()
    monkeypatch.setattr(schema, "available", lambda: [m for m in shipped if m.version < 19])
    await schema.migrate(empty_dsn)
    old = {"read": uuid.uuid4(), "operate": uuid.uuid4(), "ingest:stripe:acct_1": uuid.uuid4()}
    conn = await asyncpg.connect(empty_dsn)
    try:
        for n, (scope, key_id) in enumerate(old.items()):
            await conn.execute(
                "INSERT INTO ledgerhub.api_keys (id, tenant, scope, prefix, key_hash, label, "
                "revoked_at) VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END)",
                key_id,
                "*" if scope == "operate" else "acme",
                scope,
                f"lh_{n:06d}",
                bytes([n]) * 32,
                f"label {n}",
                scope == "read",
            )
    finally:
        await conn.close()
    monkeypatch.setattr(schema, "available", lambda: shipped)
    applied = await schema.migrate(empty_dsn)
    assert [m.version for m in applied] == [m.version for m in shipped if m.version >= 19]
    keys = await KeyStore.open(empty_dsn)
    try:
        found = {key.id: key for key in await keys.list()}
        assert {str(found[key_id].scopes[0]) for key_id in old.values()} == set(old)
        assert all(len(key.scopes) == 1 for key in found.values())
        assert found[old["read"]].state(found[old["read"]].created_at) == "revoked"
        assert found[old["operate"]].tenant == "*"
        assert all(k.use_count == 0 for k in found.values())
        assert all(k.allow_ips == () for k in found.values())
        assert {k.label for k in found.values()} == {"label 0", "label 1", "label 2"}
        assert await keys.find(bytes([2]) * 32) is not None
    finally:
        await keys.close()
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO ledgerhub.api_keys (id, tenant, scopes, prefix, key_hash) "
                "VALUES ($1, '*', ARRAY['operate', 'read'], 'lh_x', $2)",
                uuid.uuid4(),
                bytes([9]) * 32,
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO ledgerhub.api_keys (id, tenant, scopes, prefix, key_hash) "
                "VALUES ($1, 'acme', ARRAY['admin'], 'lh_x', $2)",
                uuid.uuid4(),
                bytes([9]) * 32,
            )
    finally:
        await conn.close()
