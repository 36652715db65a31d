"""The ingestion commands as a user runs them: keys, serve, webhooks send, verify --signatures,
and a config mistake reported at start with its file and line."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.api.conftest import SECRETS, write_config
from tests.cli.test_cli import ledgerhub, one_line_error


def get(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_keys_create_list_revoke(dsn: str) -> None:
    env = {"LEDGERHUB_DSN": dsn}
    created = ledgerhub(
        "keys",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "ingest:stripe:acct_1",
        "--expires",
        "30d",
        "--label",
        "ci",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("lh_")
    assert len(key) > 40
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM ledgerhub.api_keys")
        assert len(rows) == 1
        assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).digest()
        assert all(key not in str(value) for value in dict(rows[0]).values())
    finally:
        await conn.close()
    listed = ledgerhub("keys", "list", env=env)
    assert listed.returncode == 0
    assert "ingest:stripe:acct_1" in listed.stdout
    assert "active" in listed.stdout
    assert key not in listed.stdout
    revoked = ledgerhub("keys", "revoke", key[:9], env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in ledgerhub("keys", "list", env=env).stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--tenant", "acme", "--scope", "admin"], "scope 'admin'"),
        (["--tenant", "*", "--scope", "read"], "only an operate key"),
        (["--tenant", "acme", "--scope", "read", "--expires", "yesterday"], "--expires"),
    ],
)
def test_keys_create_refuses_bad_input_in_one_line(dsn: str, args: list[str], reason: str) -> None:
    result = ledgerhub("keys", "create", *args, env={"LEDGERHUB_DSN": dsn})
    assert reason in one_line_error(result)


def test_config_error_names_file_and_line(dsn: str, tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(
        path.read_text().replace('id = "square:seller"', 'id = "square:seller"\ncolour = 1')
    )
    result = ledgerhub(
        "serve", "--port", "0", env={"LEDGERHUB_DSN": dsn, "LEDGERHUB_CONFIG": str(path)}
    )
    line = one_line_error(result)
    number = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "colour" in text)
    assert f"{path}:{number}:" in line
    assert "colour" in line


@pytest.fixture
def running_hub(dsn: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")},
        "LEDGERHUB_DSN": dsn,
        "LEDGERHUB_CONFIG": str(write_config(tmp_path)),
        "STRIPE_SECRET": SECRETS["stripe"].decode(),
        "SHOPIFY_SECRET": SECRETS["shopify"].decode(),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", "0", "--no-workers"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert "serving on http://127.0.0.1:" in first, first
        url = first.split("serving on ", 1)[1].split()[0]
        yield url, env
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_serve_send_and_verify_signatures(running_hub: tuple[str, dict[str, str]]) -> None:
    url, env = running_hub
    assert get(f"{url}/healthz") == 200
    assert get(f"{url}/v1/events") == 401
    for provider, path, secret in (
        ("stripe", "stripe/acct_1", "env:STRIPE_SECRET"),
        ("shopify", "shopify/acme-store", "env:SHOPIFY_SECRET"),
    ):
        sent = subprocess.run(
            [sys.executable, "-m", "hub", "webhooks", "send", provider,
             "--to", f"{url}/v1/webhooks/{path}", "--secret", secret],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert '"appended"' in sent.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "hub", "webhooks", "send", "stripe",
         "--to", f"{url}/v1/webhooks/stripe/acct_1", "--secret", "env:SHOPIFY_SECRET"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "HTTP 401" in one_line_error(wrong)
    verified = subprocess.run(
        [sys.executable, "-m", "hub", "verify", "--signatures"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert "signatures verify: 2 webhook deliveries" in verified.stdout
    other = Path(env["LEDGERHUB_CONFIG"]).parent / "rotated"
    other.mkdir()
    rotated_config = write_config(other, {**SECRETS, "stripe": b"rotated"})
    rotated = dict(env, LEDGERHUB_CONFIG=str(rotated_config))
    failed = subprocess.run(
        [sys.executable, "-m", "hub", "verify", "--signatures"],
        env=rotated, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    reason = failed.stderr.strip().splitlines()[-1]  # after the progress lines
    assert reason.startswith("ledgerhub: delivery at position 1 (stripe:acct_1) does not verify")
