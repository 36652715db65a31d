"""Running ``ledgerhub`` as real processes for the ops tests: ``serve`` on a free port of
127.0.0.1 with its log (stderr) in a file, keys made the way ``keys create`` makes them, and
the tools CI must have (a missing one skips the test here, fails it in CI)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store.keys import KeyStore

ROOT = Path(__file__).resolve().parents[2]
SERVING = "ledgerhub serving on "


def tool(name: str, *candidates: Path) -> Path:
    """The executable ``name`` (on PATH, else the first of ``candidates`` that exists); skip
    the test without it, unless in CI (``CI`` set), where a missing tool fails it."""
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    message = f"{name} is not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must have it: .ci/run installs it)")
    pytest.skip(message)


async def make_key(dsn: str, scope: str, tenant: str = "default") -> str:
    """A key stored the way ``ledgerhub keys create`` stores it."""
    keys = await KeyStore.open(dsn)
    try:
        key = new_key()
        await keys.create(
            digest=key_digest(key), prefix=key_prefix(key), tenant=tenant, scope=Scope.parse(scope)
        )
        return key
    finally:
        await keys.close()


def hub_env(dsn: str, config: Path, home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its ``LEDGERHUB_*`` and ``OTEL_*``, plus the hub's
    database, config and home, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERHUB_", "OTEL_"))}
    env.update(LEDGERHUB_DSN=dsn, LEDGERHUB_CONFIG=str(config), LEDGERHUB_HOME=str(home),
               PYTHONPATH=str(ROOT), **extra)  # fmt: skip
    return env


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


@contextlib.asynccontextmanager
async def serving(env: Mapping[str, str], log: Path, *args: str) -> AsyncIterator[str]:
    """``ledgerhub [-v] serve --port 0 ARGS`` with ``env``, its stderr appended to ``log``;
    yields its URL; stops it with SIGTERM and checks it exited 0 (within 30 s)."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "serve", "--port", "0", *args,
            env=dict(env), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        yield await _listening(process, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    if code != 0:
        text = await asyncio.to_thread(log.read_text, errors="replace")
        raise AssertionError(f"serve exited {code}:\n{text[-4000:]}")


async def cli(env: Mapping[str, str], log: Path, *args: str) -> tuple[int, str]:
    """``python -m hub ARGS`` with ``env``: (exit code, stdout); stderr appended to ``log``."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", *args,
            env=dict(env), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()
