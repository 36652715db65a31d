"""The target contract (``hub.testing.TargetContract``) on the QuickBooks target against the
local QuickBooks server: opened through its plugin as the hub opens it (QuickBooks' own
entities from the chart's roles), without a chart (every document a JournalEntry), and on a
company whose accounts have no numbers (found by name)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest

from connectors.quickbooks import QuickBooksPlugin
from hub.spi.registry import targets
from hub.spi.target import TargetEnvironment
from hub.testing import TargetContract, TargetSubject
from hub.testing.target import default_books
from tests.quickbooks.fake_qbo import FakeQuickBooks, serve
from tests.quickbooks.harness import REALM, SECRET_ENV, TOKEN_FILE, new_fake, qbo


def once_each(fake: FakeQuickBooks) -> None:
    """Every live entity ledgerhub wrote carries a tag no other live entity carries."""
    tags = Counter((key, part) for _, key, _, part in fake.live_tags())
    assert set(tags.values()) <= {1}, tags


class TestQuickBooksPlugin(TargetContract):
    plugin = targets()["quickbooks"]
    settings: ClassVar[Mapping[str, Any]] = {
        "realm_id": REALM,
        "client_id": "client",
        "client_secret": f"env:{SECRET_ENV}",
        "refresh_token_file": TOKEN_FILE,
        "api_url": "http://127.0.0.1:9/v3",
        "token_url": "http://127.0.0.1:9/oauth2/v1/tokens/bearer",
    }

    @contextlib.asynccontextmanager
    async def open_target(self, tmp_path: Path) -> AsyncIterator[TargetSubject]:
        fake = new_fake()
        (tmp_path / TOKEN_FILE).write_text(fake.refresh_token)
        (tmp_path / "home").mkdir(exist_ok=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(SECRET_ENV, "secret")
            async with serve(fake), aiohttp.ClientSession() as session:
                raw = {**self.settings, "api_url": f"{fake.url}/v3",
                       "token_url": f"{fake.url}/oauth2/v1/tokens/bearer"}  # fmt: skip
                plugin = self.plugin
                assert plugin is not None
                env = TargetEnvironment(default_books(), tmp_path / "home", tmp_path, session)
                target = plugin.open(plugin.validate(raw), env)
                yield TargetSubject(target, lambda: once_each(fake))

    def test_the_entry_point_is_this_plugin(self) -> None:
        assert isinstance(self.plugin, QuickBooksPlugin)


class TestQuickBooksVariants(TargetContract):
    @pytest.fixture(params=["journals", "accounts-by-name"])
    async def target_subject(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[TargetSubject]:
        if request.param == "journals":
            opened = qbo(tmp_path, chart=False)
        else:
            opened = qbo(tmp_path, numbered=False)
        async with opened as (fake, target):
            yield TargetSubject(target, lambda: once_each(fake))
