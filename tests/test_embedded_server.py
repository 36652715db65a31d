"""``hub.testing.postgres.server``: an embedded server started for a test session is stopped
and its directory removed when the session ends (it used to keep running, one more PostgreSQL
left behind by every run of the test command)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.testing.postgres import server


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its parent, does
    not): read from Linux's /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_an_embedded_test_server_is_stopped_and_removed_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LEDGERHUB_TEST_DSN", raising=False)
    monkeypatch.setenv("LEDGERHUB_TEST_DOCKER", "0")
    with server() as (uri, how):
        assert how == "embedded"
        found = re.search(r"host=([^&]+)", uri)
        assert found is not None, uri
        socket_dir = Path(found[1])
        pid = int((socket_dir / "postmaster.pid").read_text().split()[0])
        assert _running(pid)
    assert not socket_dir.exists()
    assert not _running(pid)
