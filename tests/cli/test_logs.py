"""Structured logs (``hub.logs``): a real ``serve`` process logs JSON lines on stderr, one
access line per request carrying the request id it answered with, and never a key or a secret;
the standard library's ``logging`` comes out through the same renderer with the bound context."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from hub import logs
from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store.keys import KeyStore
from tests.api.conftest import SECRETS, write_config

ROOT = Path(__file__).resolve().parents[2]
SERVING = "ledgerhub serving on "


async def _operate_key(dsn: str) -> str:
    keys = await KeyStore.open(dsn)
    try:
        key = new_key()
        await keys.create(
            digest=key_digest(key), prefix=key_prefix(key), tenant="*", scope=Scope.parse("operate")
        )
        return key
    finally:
        await keys.close()


async def _listening(process: asyncio.subprocess.Process, log: Path) -> str:
    """The URL ``serve`` listens on, once its log says so (60 s at most)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        text = await asyncio.to_thread(log.read_text, errors="replace")
        for line in text.splitlines():
            if SERVING in line:
                return line.split(SERVING, 1)[1].split()[0].rstrip('",')
        assert process.returncode is None, f"serve exited {process.returncode}:\n{text}"
        assert asyncio.get_running_loop().time() < deadline, f"serve did not listen:\n{text}"
        await asyncio.sleep(0.05)


def _lines(log: Path) -> list[dict[str, Any]]:
    """Every line of ``log`` as JSON (a line that is not JSON fails here)."""
    return [json.loads(line) for line in log.read_text().splitlines()]


async def test_serve_logs_json_lines_with_one_access_line_per_request(
    dsn: str, tmp_path: Path
) -> None:
    key = await _operate_key(dsn)
    log = tmp_path / "serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")},
        "LEDGERHUB_DSN": dsn,
        "LEDGERHUB_CONFIG": str(write_config(tmp_path)),
        "PYTHONPATH": str(ROOT),
    }
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "serve", "--port", "0", "--no-workers",
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    answered: dict[str, tuple[str, int]] = {}
    auth = {"Authorization": f"Bearer {key}"}
    try:
        url = await _listening(process, log)
        async with aiohttp.ClientSession() as http:
            for path, headers in (
                ("/healthz", {}),
                ("/v1/runs?limit=5", auth),
                ("/v1/runs?kind=bogus", auth),  # 422, naming kind
                (f"/v1/runs?token={key}", auth),  # 422: the query (and its key) is never logged
                ("/v1/events", {}),  # 401: no key
                ("/v1/runs", {**auth, "X-Request-Id": "mine-1"}),
            ):
                async with http.get(f"{url}{path}", headers=headers) as response:
                    await response.read()
                    answered[response.headers["X-Request-Id"]] = (
                        path.split("?")[0],
                        response.status,
                    )
            stripe = f"{url}/v1/webhooks/stripe/acct_1"
            async with http.post(stripe, data=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}):
                pass
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0

    assert sorted(status for _, status in answered.values()) == [200, 200, 200, 401, 422, 422]
    assert "mine-1" in answered
    lines = _lines(log)
    assert lines
    assert all({"timestamp", "level", "event"} <= set(line) for line in lines)
    access = [line for line in lines if line.get("logger") == logs.ACCESS_LOGGER]
    assert len(access) == len(answered) + 1  # and the webhook's
    by_id = {line["request_id"]: line for line in access}
    for request_id, (path, status) in answered.items():
        line = by_id[request_id]
        assert (line["event"], line["level"]) == ("request", "info")
        assert (line["method"], line["path"], line["status"]) == ("GET", path, status)
        assert isinstance(line["duration_ms"], int | float)
        assert len(line["trace_id"]) == 32
        assert line.get("tenant") == ("*" if path == "/v1/runs" else None)
    text = log.read_text()
    for secret in (key, *(value.decode() for value in SECRETS.values())):
        assert secret not in text
    assert "token=" not in text


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """``hub.logs`` configured for JSON into a buffer; the logging set-up restored after."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    logs.configure(environ={"LEDGERHUB_LOG_FORMAT": "json"}, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in (logs.ACCESS_LOGGER, logs.SERVICE_LOGGER):
            logging.getLogger(name).setLevel(logging.NOTSET)
        structlog.reset_defaults()


def test_stdlib_logging_comes_out_as_json_with_the_bound_context(configured: io.StringIO) -> None:
    key = new_key()
    with logs.bound(tenant="acme", projection="ledger", connection="stripe:acct_1"):
        logging.getLogger("hub.example").warning("could not use %s: %s", key, "refused")
        logging.getLogger("hub.example").info("not shown: below the default level")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("hub.example").exception("failed with Bearer %s", key)
    logging.getLogger("hub.example").error("outside", extra={"api_key": key, "n": 1})
    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["warning", "error", "error"]
    first, failed, outside = lines
    assert first["event"] == f"could not use {key_prefix(key)}…: refused"
    assert (first["tenant"], first["projection"], first["connection"]) == (
        "acme",
        "ledger",
        "stripe:acct_1",
    )
    assert first["logger"] == "hub.example"
    assert first["timestamp"].endswith("Z")
    assert "ValueError: boom" in failed["exception"]
    assert failed["event"] == f"failed with Bearer {logs.REDACTED}"
    assert "tenant" not in outside
    assert outside["api_key"] == logs.REDACTED
    assert outside["n"] == 1
    assert key not in configured.getvalue()


def test_any_value_logged_is_written_as_json(configured: io.StringIO) -> None:
    """Values JSON has no type for are written as text, an integer past 64 bits as itself."""
    when = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
    log = logging.getLogger("hub.example")
    log.warning("values", extra={"when": when, "path": Path("/srv/x"), "ids": {1}})
    log.warning("a big one", extra={"big": 2**70, "n": 1})
    line, big = [json.loads(text) for text in configured.getvalue().splitlines()]
    assert line["when"] == "2026-10-01T09:30:00+00:00"
    assert line["path"] == "/srv/x"
    assert line["ids"] == "{1}"
    assert (big["big"], big["n"]) == (2**70, 1)


@pytest.mark.parametrize(
    ("variable", "value"), [("LEDGERHUB_LOG_FORMAT", "xml"), ("LEDGERHUB_LOG_LEVEL", "loud")]
)
def test_a_bad_log_variable_is_one_line_naming_it(variable: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    result = subprocess.run(
        [sys.executable, "-m", "hub", "runs", "--json"],
        env={**env, variable: value, "PYTHONPATH": str(ROOT)},
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert variable in result.stderr
    assert repr(value) in result.stderr
