"""The target implementations the contract suite runs against, each with its own validator."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.books import DEFAULT_CHART
from hub.sync.beancount import BeancountTarget
from hub.sync.target import Target

CHART = {a.code: a for a in DEFAULT_CHART}


def bean_check(path: Path) -> None:
    """Fail unless ``bean-check`` accepts the ledger file at ``path``."""
    tool = Path(sys.executable).with_name("bean-check")
    result = subprocess.run([str(tool), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Subject:
    """A target under test and a check that what it holds is valid for the real system."""

    target: Target
    validate: Callable[[], None]


def beancount(tmp: Path) -> Subject:
    """A Beancount file target on a fresh file, validated by ``bean-check``."""
    path = tmp / "books" / "default.beancount"
    target = BeancountTarget(path, CHART)
    return Subject(target, lambda: bean_check(path) if path.exists() else None)


FACTORIES: dict[str, Callable[[Path], Subject]] = {"beancount": beancount}
"""Every target implementation: the contract suite is parametrized over these."""
