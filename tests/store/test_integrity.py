"""Append-only by trigger and by privilege; tampering is caught by the hash chain walk."""

from __future__ import annotations

import asyncpg
import pytest

from hub.config import APP_ROLE
from hub.store import EventStore
from hub.usecases.verify import verify_chain
from tests.factories import event

pytestmark = pytest.mark.store


@pytest.fixture
async def admin(dsn: str):  # type: ignore[no-untyped-def]
    """A superuser-ish connection: bypasses privileges, but not the trigger."""
    conn = await asyncpg.connect(dsn)
    yield conn
    await conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledgerhub.events SET data = '{}'::jsonb WHERE position = 1",
        "DELETE FROM ledgerhub.events WHERE position = 1",
        "TRUNCATE ledgerhub.events",
    ],
)
async def test_trigger_refuses_changes_even_for_the_owner(
    store: EventStore, admin: asyncpg.Connection, statement: str
) -> None:
    await store.append([event("e1")])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute(statement)
    assert await store.head() == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledgerhub.events SET data = '{}'::jsonb WHERE position = 1",
        "DELETE FROM ledgerhub.events WHERE position = 1",
        "TRUNCATE ledgerhub.events",
        "ALTER TABLE ledgerhub.events DISABLE TRIGGER events_no_update_delete",
    ],
)
async def test_the_hub_role_lacks_the_privilege(
    store: EventStore, dsn: str, statement: str
) -> None:
    await store.append([event("e1")])
    conn = await asyncpg.connect(dsn, server_settings={"role": APP_ROLE})
    try:
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match=r"permission denied|must be owner"
        ):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_hub_role_may_insert_and_select_only(admin: asyncpg.Connection) -> None:
    granted = await admin.fetch(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = $1 AND table_schema = 'ledgerhub' AND table_name = 'events'",
        APP_ROLE,
    )
    assert sorted(r["privilege_type"] for r in granted) == ["INSERT", "SELECT"]


async def _tamper(admin: asyncpg.Connection, statement: str) -> None:
    """What an attacker with superuser rights could do: switch the trigger off, edit, switch on."""
    async with admin.transaction():
        await admin.execute("ALTER TABLE ledgerhub.events DISABLE TRIGGER events_no_update_delete")
        await admin.execute(statement)
        await admin.execute("ALTER TABLE ledgerhub.events ENABLE TRIGGER events_no_update_delete")


async def test_verify_finds_an_edited_payload(store: EventStore, admin: asyncpg.Connection) -> None:
    await store.append([event(f"e{i}") for i in range(1, 6)])
    assert (await verify_chain(store)).ok
    await _tamper(
        admin,
        "UPDATE ledgerhub.events SET data = jsonb_set(data, '{amount}', '1') WHERE position = 3",
    )
    report = await verify_chain(store, batch=2)
    assert report.broken_at == 3
    assert report.checked == 2
    assert "hash mismatch" in (report.reason or "")


async def test_verify_finds_a_removed_event(store: EventStore, admin: asyncpg.Connection) -> None:
    await store.append([event(f"e{i}") for i in range(1, 6)])
    await _tamper(admin, "DELETE FROM ledgerhub.events WHERE position = 4")
    report = await verify_chain(store)
    assert report.broken_at == 4
    assert "missing" in (report.reason or "")


async def test_verify_finds_an_edited_timestamp(
    store: EventStore, admin: asyncpg.Connection
) -> None:
    await store.append([event(f"e{i}") for i in range(1, 4)])
    await _tamper(
        admin,
        "UPDATE ledgerhub.events SET occurred_at = occurred_at + interval '1 day' "
        "WHERE position = 1",
    )
    assert (await verify_chain(store)).broken_at == 1


async def test_verify_finds_a_removed_last_event_only_as_a_shorter_chain(
    store: EventStore, admin: asyncpg.Connection
) -> None:
    # Truncating the tail leaves a valid but shorter chain: the head hash an operator recorded
    # elsewhere is what exposes it, so the report carries it.
    await store.append([event(f"e{i}") for i in range(1, 4)])
    before = await verify_chain(store)
    await _tamper(admin, "DELETE FROM ledgerhub.events WHERE position = 3")
    after = await verify_chain(store)
    assert after.ok
    assert after.checked == 2
    assert after.head_hash != before.head_hash
