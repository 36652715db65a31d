"""Printing to standard output with rich, under the CLI's rule for a reader that goes away."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class _Console(Console):
    """rich's console, but a closed pipe raises ``BrokenPipeError`` (which ``ledgerhub``'s
    ``main`` turns into a quiet exit 0, as for every command) instead of rich's own
    ``SystemExit(1)``."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def console(**options: Any) -> Console:
    """A rich ``Console`` on standard output (``options`` as for ``Console``)."""
    return _Console(**options)
