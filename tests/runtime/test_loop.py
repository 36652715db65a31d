"""The event loop ``serve`` and ``worker`` run on: uvloop's when it is installed."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys

import pytest

from hub.runtime.loop import use_uvloop


def _loop_module(code: str) -> str:
    """The module of the running loop's class in a fresh interpreter that runs ``code`` first."""
    probe = (
        f"{code}\nimport asyncio\n"
        "async def main():\n    return type(asyncio.get_running_loop()).__module__\n"
        "print(asyncio.run(main()))"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_the_loop_is_uvloops_when_it_is_installed() -> None:
    installed = importlib.util.find_spec("uvloop") is not None
    module = _loop_module("from hub.runtime.loop import use_uvloop\nprint(use_uvloop())")
    said, _, loop = module.partition("\n")
    assert said == str(installed)
    assert loop.startswith("uvloop") == installed
    assert _loop_module("pass").startswith("asyncio")  # nothing changes without the call


def test_without_uvloop_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # an import of it raises ImportError
    before = asyncio.get_event_loop_policy()
    assert use_uvloop() is False
    assert asyncio.get_event_loop_policy() is before
