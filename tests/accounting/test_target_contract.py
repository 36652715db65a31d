"""The target contract (``hub.testing.TargetContract``) run on every built-in target, each with
its own validator (``tests.accounting.targets``): the same suite a third-party target package
runs on itself. The Beancount target also runs it opened through its plugin, as the hub opens it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hub.spi.registry import targets
from hub.spi.target import Target
from hub.testing import TargetContract, TargetSubject
from tests.accounting.targets import FACTORIES, bean_check


class TestBuiltInTargets(TargetContract):
    @pytest.fixture(params=sorted(FACTORIES))
    async def target_subject(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[TargetSubject]:
        async with FACTORIES[request.param](tmp_path) as made:
            yield TargetSubject(made.target, made.validate)


class TestBeancountPlugin(TargetContract):
    plugin = targets()["beancount"]
    settings: ClassVar[Mapping[str, Any]] = {"path": "books/default.beancount"}

    def validate_held(self, target: Target) -> None:
        path = getattr(target, "path", None)
        assert isinstance(path, Path)
        if path.exists():
            bean_check(path)
