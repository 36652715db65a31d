"""``ledgerhub keys`` and ``ledgerhub serve`` (TLS, rate limit) as a user runs them: real
processes, a real database, exit codes and the one line on stderr."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api.conftest import write_config
from tests.api.test_key_security import self_signed
from tests.cli.test_cli import ledgerhub, one_line_error


def create(dsn: str, *args: str) -> str:
    result = ledgerhub("keys", "create", "--tenant", "acme", *args, env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 0, result.stderr
    key = result.stdout.splitlines()[-1]
    assert key.startswith("lh_")
    return key


def listed(dsn: str) -> list[dict[str, Any]]:
    result = ledgerhub("keys", "list", "--json", env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = orjson.loads(result.stdout)
    return rows


def test_a_key_holds_every_scope_given_and_list_json_never_shows_it(dsn: str) -> None:
    key = create(
        dsn, "--scope", "read", "--scope", "operate", "--allow-ip", "10.0.0.0/8",
        "--allow-ip", "2001:db8::/32", "--rate", "50/s", "--label", "ci",
    )  # fmt: skip
    result = ledgerhub("keys", "list", "--json", env={"LEDGERHUB_DSN": dsn})
    assert key not in result.stdout
    assert key[3:] not in result.stdout
    (row,) = orjson.loads(result.stdout)
    assert row["scopes"] == ["read", "operate"]
    assert row["allow_ips"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert row["rate"] == "50/s"
    assert row["state"] == "active"
    assert row["use_count"] == 0
    assert row["last_used_at"] is None
    assert row["prefix"] == key[:9]
    assert set(row) == {
        "id", "prefix", "tenant", "scopes", "label", "state", "created_at", "expires_at",
        "revoked_at", "replaced_by", "allow_ips", "rate", "last_used_at", "use_count",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["keys", "create", "--tenant", "a", "--scope", "read", "--scope", "admin"], "'admin'"),
        (
            ["keys", "create", "--tenant", "a", "--scope", "read", "--allow-ip", "10.0.0.1/8"],
            "host bits",
        ),
        (
            ["keys", "create", "--tenant", "a", "--scope", "read", "--allow-ip", "nowhere"],
            "nowhere",
        ),
        (["keys", "create", "--tenant", "a", "--scope", "read", "--rate", "50"], "'50'"),
        (["keys", "create", "--tenant", "*", "--scope", "operate", "--scope", "read"], "operate"),
        (["keys", "rotate", "x", "--overlap", "1w"], "'1w'"),
        (["serve", "--trust-proxy", "proxy"], "proxy"),
        (["serve", "--tls-cert", "c.pem"], "--tls-key"),
    ],
)
def test_usage_errors_exit_2_with_one_line(dsn: str, args: list[str], named: str) -> None:
    result = ledgerhub(*args, env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 2, result
    assert named in one_line_error(result)


def test_rotate_prints_the_new_key_last_and_keeps_the_old_for_the_overlap(dsn: str) -> None:
    old = create(dsn, "--scope", "ingest:*", "--scope", "read")
    (before,) = listed(dsn)
    result = ledgerhub("keys", "rotate", old[:9], "--overlap", "2h", env={"LEDGERHUB_DSN": dsn})
    assert result.returncode == 0, result.stderr
    new = result.stdout.splitlines()[-1]
    assert new.startswith("lh_")
    assert new != old
    assert old not in result.stdout
    rows = {row["prefix"]: row for row in listed(dsn)}
    retired, successor = rows[old[:9]], rows[new[:9]]
    assert retired["replaced_by"] == successor["id"]
    assert retired["state"] == "active"  # during the overlap
    ends = datetime.fromisoformat(retired["expires_at"])
    assert abs(ends - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)
    assert successor["scopes"] == before["scopes"] == ["ingest:*", "read"]
    again = ledgerhub("keys", "rotate", old[:9], env={"LEDGERHUB_DSN": dsn})
    assert again.returncode == 1
    assert "already rotated" in one_line_error(again)
    missing = ledgerhub("keys", "rotate", "lh_nothing", env={"LEDGERHUB_DSN": dsn})
    assert missing.returncode == 1
    assert "lh_nothing" in one_line_error(missing)


def test_an_unreadable_certificate_is_one_line_and_exit_1(dsn: str, tmp_path: Path) -> None:
    result = ledgerhub(
        "serve", "--port", "0", "--no-workers",
        env={
            "LEDGERHUB_DSN": dsn,
            "LEDGERHUB_CONFIG": str(write_config(tmp_path)),
            "LEDGERHUB_TLS_CERT": str(tmp_path / "missing.pem"),
            "LEDGERHUB_TLS_KEY": str(tmp_path / "missing.key"),
        },
    )  # fmt: skip
    assert result.returncode == 1
    line = one_line_error(result)
    assert "missing.pem" in line
    assert "TLS certificate" in line


def call(url: str, key: str, context: ssl.SSLContext) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return int(response.status), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


HttpsHub = tuple[str, ssl.SSLContext, "subprocess.Popen[str]"]
"""A running ``serve --tls-cert … --tls-key …``: its URL, a context trusting it, the process."""


@pytest.fixture
def https_hub(
    dsn: str, tmp_path: Path
) -> Iterator[tuple[str, ssl.SSLContext, subprocess.Popen[str]]]:
    cert, key_file = self_signed(tmp_path)
    env = {
        "LEDGERHUB_DSN": dsn,
        "LEDGERHUB_CONFIG": str(write_config(tmp_path)),
        "LEDGERHUB_RATE_LIMIT": "3/h",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", "0", "--no-workers",
         "--tls-cert", str(cert), "--tls-key", str(key_file)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}, **env},
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert "serving on https://127.0.0.1:" in first, first
        url = first.split("serving on ", 1)[1].split()[0]
        yield url, ssl.create_default_context(cafile=str(cert)), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_serve_over_tls_with_the_default_rate_and_counted_uses(
    dsn: str, https_hub: HttpsHub
) -> None:
    url, context, process = https_hub
    key = create(dsn, "--scope", "read")
    statuses = [call(f"{url}/v1/events", key, context)[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, headers = call(f"{url}/v1/events", key, context)
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    plain = url.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"{plain}/healthz", timeout=10)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0  # it writes the use counts as it stops
    (row,) = listed(dsn)
    assert row["use_count"] == 4
    assert row["last_used_at"] is not None
