"""``TargetContract``: what every accounting target keeps, run on "this target factory".

Subclass it in a test module (the class name must start with ``Test``) and either give the
plugin and the settings a tenant would write in its ``sync`` table::

    from hub.testing import TargetContract

    class TestJsonLines(TargetContract):
        plugin = JsonLinesPlugin()
        settings = {"path": "books.jsonl"}     # relative: under the test's config folder

        def validate_held(self, target):       # optional: check what the real system holds
            ...

or override ``open_target`` (an async context manager yielding a ``TargetSubject``) to build the
target yourself, or the ``target_subject`` fixture to run the suite on several targets.

With ``plugin``, the target is opened the way the hub opens it: ``plugin.validate(settings)``
then ``plugin.open(settings, env)``, for tenant ``default`` on the default chart of accounts, with
``home`` and the config folder in the test's ``tmp_path`` and a shared ``aiohttp`` session.

What it checks: a document created twice is held once (a send repeated after a crash); an update
(or, for a target that cannot update, a void and a re-create under a new revision) replaces the
content; a void removes it and voiding twice is harmless; amounts keep their currency's exponent
(JPY, KWD, negative); a document on an account the chart does not have is rejected
(``TargetRejected``) and nothing is written. With ``plugin``: the settings model is a
``TargetSettings`` that refuses unknown keys.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio
from pydantic import ValidationError

from hub.config.books import DEFAULT_CHART, TenantBooks
from hub.domain.documents import Document
from hub.errors import TargetRejected
from hub.spi.target import Target, TargetEnvironment, TargetPlugin, TargetSettings


def _nothing_to_check() -> None:
    return None


@dataclasses.dataclass(frozen=True)
class TargetSubject:
    """A target under test and a check that what it holds is valid for the real system (a
    ledger file ``bean-check`` accepts, say); the check is run after each test's changes."""

    target: Target
    validate: Callable[[], None] = _nothing_to_check


def default_books(tenant: str = "default") -> TenantBooks:
    """The books a target is opened with: the default chart of accounts, in UTC."""
    return TenantBooks(tenant, ZoneInfo("UTC"), {a.code: a for a in DEFAULT_CHART})


def document(key: str, amount: int, currency: str = "USD") -> Document:
    """A balanced payment document: ``amount`` minor units from 4000 (Sales) to 1200."""
    return Document(
        "default",
        "contract",
        key,
        "payment",
        date(2024, 3, 1),
        f'payment "{key}"',
        (("1200", currency, amount), ("4000", currency, -amount)),
    )


class TargetContract:
    """The target contract suite: subclass with ``plugin`` (and ``settings``), or override
    ``open_target``."""

    plugin: ClassVar[TargetPlugin | None] = None
    """The target plugin under test (what the ``ledgerhub.targets`` entry point names)."""
    settings: ClassVar[Mapping[str, Any]] = {}
    """The keys of the tenant's ``sync`` table the plugin is opened with."""

    def validate_held(self, target: Target) -> None:
        """Check that what ``target`` holds is valid for the real system (default: nothing)."""

    @contextlib.asynccontextmanager
    async def open_target(self, tmp_path: Path) -> AsyncIterator[TargetSubject]:
        """The target under test, opened from ``plugin`` and ``settings``."""
        plugin = self.plugin
        if plugin is None:
            pytest.fail(f"{type(self).__qualname__}: set plugin = ..., or override open_target")
        settings = plugin.validate(dict(self.settings))
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        async with aiohttp.ClientSession() as session:
            env = TargetEnvironment(default_books(), home, tmp_path, session)
            target = plugin.open(settings, env)
            yield TargetSubject(target, lambda: self.validate_held(target))

    @pytest_asyncio.fixture
    async def target_subject(self, tmp_path: Path) -> AsyncIterator[TargetSubject]:
        """The target under test (``open_target``). Override this fixture (parametrized) to run
        the suite on several targets."""
        async with self.open_target(tmp_path) as subject:
            yield subject

    # ------------------------------------------------------------------ the plugin

    def test_the_plugin_declares_its_name_and_settings_model(self) -> None:
        plugin = self.plugin
        if plugin is None:
            pytest.skip("no plugin: the target is built by open_target")
        assert isinstance(plugin, TargetPlugin)
        assert isinstance(plugin.name, str)
        assert plugin.name
        assert issubclass(plugin.settings, TargetSettings)
        assert isinstance(plugin.validate(dict(self.settings)), plugin.settings)

    def test_the_settings_refuse_an_unknown_key(self) -> None:
        plugin = self.plugin
        if plugin is None:
            pytest.skip("no plugin: the target is built by open_target")
        with pytest.raises(ValidationError):
            plugin.validate({**self.settings, "no_such_setting": "x"})

    # ------------------------------------------------------------------ the target

    @pytest.mark.asyncio
    async def test_create_holds_the_document_once(self, target_subject: TargetSubject) -> None:
        subject = target_subject
        doc = document("stripe:acct/charge:ch_1", 1099)
        first = await subject.target.create(doc)
        again = await subject.target.create(doc)  # a send repeated after a crash
        assert again.target_id == first.target_id
        held = await subject.target.held()
        assert [h.target_id for h in held] == [first.target_id]
        assert held[0].content_hash == doc.content_hash
        subject.validate()

    @pytest.mark.asyncio
    async def test_update_or_recreate_replaces_the_content(
        self, target_subject: TargetSubject
    ) -> None:
        subject = target_subject
        doc = document("stripe:acct/charge:ch_2", 2500)
        receipt = await subject.target.create(doc)
        changed = dataclasses.replace(doc, postings=(("1200", "USD", 2400), ("4000", "USD", -2400)))
        if subject.target.supports_update:
            await subject.target.update(receipt.target_id, changed)
        else:
            await subject.target.void(receipt.target_id)
            await subject.target.create(dataclasses.replace(changed, revision="2"))
        held = await subject.target.held()
        assert [h.content_hash for h in held] == [changed.content_hash]
        subject.validate()

    @pytest.mark.asyncio
    async def test_void_removes_it_and_twice_is_harmless(
        self, target_subject: TargetSubject
    ) -> None:
        subject = target_subject
        kept = await subject.target.create(document("k/1", 100))
        gone = await subject.target.create(document("k/2", 200))
        await subject.target.void(gone.target_id)
        await subject.target.void(gone.target_id)
        assert [h.target_id for h in await subject.target.held()] == [kept.target_id]
        subject.validate()

    @pytest.mark.asyncio
    async def test_amounts_keep_the_currency_exponent(self, target_subject: TargetSubject) -> None:
        subject = target_subject
        for key, amount, currency in (
            ("jpy", 1500, "JPY"),
            ("kwd", 12345, "KWD"),
            ("neg", -7, "USD"),
        ):
            await subject.target.create(document(key, amount, currency))
        assert len(await subject.target.held()) == 3
        subject.validate()

    @pytest.mark.asyncio
    async def test_an_unknown_account_is_rejected_and_nothing_written(
        self, target_subject: TargetSubject
    ) -> None:
        subject = target_subject
        doc = dataclasses.replace(
            document("bad", 100), postings=(("9999", "USD", 100), ("4000", "USD", -100))
        )
        with pytest.raises(TargetRejected):
            await subject.target.create(doc)
        assert await subject.target.held() == []
