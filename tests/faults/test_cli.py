"""The ``ledgerhub`` command under a reader that goes away, a busy port and wrong arguments.

Each case runs the real command (``python -m hub``) as a process of its own, bounded in time:

- a reader that stops reading (``ledgerhub events tail | head -1``) ends the command quietly with
  exit 0, as Unix tools do, for every command that prints;
- an address ``serve`` (or ``worker --metrics-port``) cannot listen on is one line naming it,
  exit 1;
- an argument the command can judge wrong by itself, without the database, is a usage error:
  exit 2 and one line on stderr. The usage cases run against a server that does not answer, so a
  command that went to the database first would say "cannot connect" (exit 1) instead.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store import EventStore
from hub.store.keys import KeyStore
from tests.cli.test_cli import ledgerhub, one_line_error
from tests.factories import event

TIMEOUT = 60
"""Seconds any one command may take."""

CHECKING = Path(__file__).parent.parent / "fixtures" / "ofx" / "checking.ofx"

NO_SERVER = "postgresql://nobody@127.0.0.1:1/nothing"
"""A DSN nothing answers on: a command that needs the database fails with exit 1."""


def environment(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    return {**base, **extra}


def hub_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub", *args]


@pytest.fixture
async def short_log(dsn: str, store: EventStore) -> str:
    """A log with a few events and a key, so ``events tail`` and ``keys list`` print."""
    await store.append([event(f"e{i}") for i in range(20)])
    keys = await KeyStore.open(dsn)
    try:
        key = new_key()
        await keys.create(
            digest=key_digest(key),
            prefix=key_prefix(key),
            tenant="default",
            scope=Scope.parse("read"),
            expires_at=None,
            label="reader",
        )
    finally:
        await keys.close()
    return dsn


@pytest.fixture
async def long_log(dsn: str, store: EventStore) -> str:
    """A log whose ``events tail`` output (about 1 MB) is far more than a pipe holds."""
    payload = {"note": "x" * 200}
    for batch in range(4):
        await store.append([event(f"e{batch}-{i}", data={**payload, "i": i}) for i in range(1000)])
    return dsn


def test_events_tail_into_head_ends_quietly(long_log: str) -> None:
    """The shell pipeline itself: ``head -1`` exits after one line, the writer then sees EPIPE."""
    script = f"{sys.executable} -m hub events tail --after 0 | head -1; "
    script += 'echo "status=${PIPESTATUS[0]}" >&2'
    result = subprocess.run(
        ["bash", "-c", script],
        env=environment(LEDGERHUB_DSN=long_log),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.stdout.count("\n") == 1
    assert '"position":1,' in result.stdout
    assert result.stderr == "status=0\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["events", "tail", "--after", "0"],
        ["events", "tail", "--follow"],
        ["keys", "list"],
        ["status"],
        ["status", "--json"],
        ["migrate"],
        ["demo"],
        ["--version"],
        ["completion", "bash"],
        ["db", "url"],
        ["keys", "list", "--json"],
        ["runs", "--json"],
        ["webhooks", "send", "stripe", "--list"],
        ["import", "bank", str(CHECKING), "--account", "a", "--dry-run"],
        ["import", "bank", str(CHECKING), "--account", "a", "--json"],
    ],
    ids=" ".join,
)
def test_every_command_that_prints_ends_quietly_when_its_reader_has_gone(
    short_log: str, tmp_path: Path, args: list[str]
) -> None:
    """The reading end is closed before the command writes a byte: its first write (or the
    flush of what it buffered) fails with EPIPE."""
    env = environment(LEDGERHUB_DSN=short_log, LEDGERHUB_HOME=str(tmp_path))
    process = subprocess.Popen(
        hub_command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    process.stdout.close()
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert stderr.decode() == ""
    assert process.returncode == 0


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_serve_on_a_busy_port_says_so_in_one_line(dsn: str, busy_port: int) -> None:
    result = ledgerhub(
        "serve", "--port", str(busy_port), "--no-workers", env={"LEDGERHUB_DSN": dsn}
    )
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith(f"ledgerhub: cannot listen on 127.0.0.1:{busy_port}: ")
    assert "already in use" in line
    assert "internal error" not in line


def test_serve_on_a_host_that_does_not_resolve_says_so_in_one_line(dsn: str) -> None:
    args = ("serve", "--host", "no-such-host.invalid", "--port", "0", "--no-workers")
    result = ledgerhub(*args, env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 1
    assert one_line_error(result).startswith("ledgerhub: cannot listen on no-such-host.invalid:0")


def test_worker_metrics_on_a_busy_port_says_so_in_one_line(dsn: str, busy_port: int) -> None:
    result = ledgerhub(
        "worker", "--no-sync", "--metrics-port", str(busy_port), env={"LEDGERHUB_DSN": dsn}
    )
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith(f"ledgerhub: cannot listen on 127.0.0.1:{busy_port}: ")
    assert "already in use" in line


USAGE_ERRORS: list[tuple[list[str], str]] = [
    (["keys", "create", "--tenant", "acme", "--scope", "bogus"], "scope 'bogus'"),
    (["keys", "create", "--tenant", "*", "--scope", "read"], "only an operate key"),
    (["keys", "create", "--tenant", " ", "--scope", "read"], "--tenant must not be empty"),
    (["keys", "create", "--tenant", "a", "--scope", "read", "--expires", "soon"], "--expires"),
    (
        ["keys", "create", "--tenant", "a", "--scope", "read", "--expires", "2001-01-01T00:00Z"],
        "not in the future",
    ),
    (["keys", "create", "--tenant", "a", "--scope", "read", "--expires", "0d"], "future"),
    (
        ["keys", "create", "--tenant", "a", "--scope", "read", "--expires", "99999999999d"],
        "too far",
    ),
    (["keys", "create", "--tenant", "a", "--scope", "read", "--expires", "3²d"], "--expires"),
    (
        [
            "keys",
            "create",
            "--tenant",
            "a",
            "--scope",
            "read",
            "--expires",
            "9999-12-31T23:59-14:00",
        ],
        "too far in the future",
    ),
    (["keys", "revoke", ""], "must not be empty"),
    (["replay", "ledger", "--from", "10", "--to", "5"], "--from 10 is after --to 5"),
    (["replay", "ledger", "--from", "0", "--to", "5"], "--from must be at least 1"),
    (["replay", "ledger", "--from", "x", "--to", "5"], "'x' is not a whole number"),
    (["replay", "", "--from", "1", "--to", "5"], "PROJECTION must not be empty"),
    (["job", "0"], "at least 1"),
    (["job", "-3"], "at least 1"),
    (["parked", "retry", "0"], "at least 1"),
    (["parked", "retry", "1", "--timeout", "-5"], "--timeout"),
    (["parked", "retry", "1", "--timeout", "nan"], "--timeout"),
    (["parked", "skip", "one"], "not a whole number"),
    (["events", "tail", "--after", "-1"], "at least 0"),
    (["serve", "--port", "70000"], "0..65535"),
    (["serve", "--port", "http"], "not a whole number"),
    (["worker", "--metrics-port", "-2"], "0..65535"),
    (["worker", "--projection", "nope"], "--projection 'nope': no such projection"),
    (["sync", "status", "--limit", "0"], "--limit must be at least 1"),
    (["import", "bank", "x.ofx", "--account", "bank:"], "not an account name"),
    (["import", "bank", "x.ofx", "--account", " checking"], "not an account name"),
    (["import", "bank", "x.ofx", "--account", "a", "--tenant", ""], "--tenant must not be"),
    (["import", "bank", "x.ofx", "--account", "a" * 300], "at most 200 characters"),
    (["import", "bank", "x.ofx", "--account", "a", "--format", "xls"], "invalid choice"),
    (
        ["webhooks", "send", "stripe", "--to", "ftp://127.0.0.1/", "--secret", "env:S"],
        "not an http:// or https:// URL",
    ),
    (
        ["webhooks", "send", "stripe", "--to", "http://[::1", "--secret", "env:S"],
        "not an http:// or https:// URL",
    ),
    (["webhooks", "send", "stripe", "--to", "http://127.0.0.1/", "--secret", ""], "--secret"),
    (["webhooks", "send", "stripe", "--secret", "env:S"], "--to required"),
    (
        [
            "webhooks",
            "send",
            "stripe",
            "--to",
            "http://127.0.0.1/",
            "--secret",
            "env:S",
            "--sample",
            "999",
        ],
        "--sample must be 0..",
    ),
    (["ledger", "trial-balance", "--as-of", "2024-13-01"], "not a date YYYY-MM-DD"),
    (["reconcile", "payouts", "--status", "lost"], "invalid choice"),
    (["reconcile", "exceptions", "--limit", "0"], "--limit must be at least 1"),
    (["reconcile", "exceptions", "--limit", "5000"], "--limit is at most 1000"),
    (["reconcile", "exceptions", "--open", "--resolved"], "not allowed with"),
    (["export", "payouts", "--out", "payouts.txt"], "give --format csv or xlsx"),
    (["export", "journal", "--format", "pdf", "--out", "j.pdf"], "invalid choice"),
    (["export", "exceptions", "--out", "/nonexistent/dir/x.csv"], "does not exist"),
    (["export", "trial-balance", "--format", "csv"], "--out"),
    (["db", "start"], "invalid choice"),
    (["completion", "fish"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
]


def _usage_problem(args: list[str], reason: str) -> str | None:
    """What is wrong with how the command refuses ``args`` (None: exit 2, one line, ``reason``)."""
    result = ledgerhub(*args, env={"LEDGERHUB_DSN": NO_SERVER, "S": "secret"})
    lines = result.stderr.strip().splitlines()
    if result.returncode != 2 or len(lines) != 1:
        return f"exit {result.returncode}, stderr {result.stderr!r}"
    line = lines[0]
    if reason not in line or not line.endswith("(see --help)") or "cannot connect" in line:
        return f"stderr {line!r}, expected {reason!r}"
    return None


def test_a_usage_error_is_one_line_and_exit_2_without_the_database() -> None:
    """Every case of ``USAGE_ERRORS``, a few processes at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda case: _usage_problem(*case), USAGE_ERRORS))
    problems = {
        " ".join(args): problem
        for (args, _), problem in zip(USAGE_ERRORS, outcomes, strict=True)
        if problem is not None
    }
    assert problems == {}


def test_what_only_the_database_can_judge_is_still_a_failure_exit_1(dsn: str) -> None:
    """The other side of the line: a projection the database does not know is exit 1."""
    result = ledgerhub("rebuild", "nope", env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 1
    assert "no projection named 'nope'" in one_line_error(result)


def test_a_tenant_without_a_sync_target_is_a_usage_error(tmp_path: Path) -> None:
    """Judged from the configuration alone: exit 2, and no database is asked."""
    config = tmp_path / "ledgerhub.toml"
    config.write_text('[tenants.default]\nsync = { target = "beancount" }\n')
    env = {"LEDGERHUB_DSN": NO_SERVER, "LEDGERHUB_CONFIG": str(config)}
    env["LEDGERHUB_HOME"] = str(tmp_path / "home")
    for action in ("run", "shadow"):
        result = ledgerhub("sync", action, "--tenant", "acme", env=env)
        line = one_line_error(result)
        assert result.returncode == 2, line
        assert "--tenant 'acme' has no sync target (tenants with one: default)" in line
