"""Targets are plugins: a tenant's ``sync`` table is validated by the installed plugin it names
(an unknown target lists the installed ones; a bad key is refused with its key path), a target
installed only through a ``ledgerhub.targets`` entry point is validated, opened and sent to like
a built-in one, and the sender reads its documents only through the ``DocumentSource`` port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.config import Settings, load, load_config
from hub.domain.documents import Document
from hub.errors import ConfigError
from hub.spi import registry
from hub.spi.documents import DocumentSource
from hub.spi.projection import Connection
from hub.spi.registry import document_source, targets
from hub.spi.target import (
    HeldDocument,
    Receipt,
    Target,
    TargetEnvironment,
    TargetPlugin,
    TargetSettings,
    Text,
)
from hub.store import EventStore
from hub.sync.sender import Sender
from hub.sync.settings import sync_settings
from hub.sync.tenants import open_targets
from projections.accounting import Accounting
from tests.accounting.harness import documents, running, settle
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ a third party's target


class Batching(BaseModel):
    """A nested table of the memory target's settings (to check nested key paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = 10

    @field_validator("size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("a batch holds at least one document")
        return value


class MemorySettings(TargetSettings):
    """``sync = { target = "memory", label = "…", batching = { size = 5 } }``."""

    label: Text
    batching: Batching = Field(default_factory=Batching)


class MemoryTarget:
    """Documents kept in a dict: everything a ``Target`` needs, nothing else."""

    name: ClassVar[str] = "memory"
    supports_update: ClassVar[bool] = True

    def __init__(self, tenant: str, label: str) -> None:
        self.tenant, self.label = tenant, label
        self.documents: dict[str, Document] = {}

    async def create(self, document: Document) -> Receipt:
        self.documents.setdefault(document.idempotency_key, document)
        return Receipt(document.idempotency_key, f"memory-{len(self.documents)}")

    async def update(self, target_id: str, document: Document) -> Receipt:
        self.documents[target_id] = document
        return Receipt(target_id, "memory-update")

    async def void(self, target_id: str) -> Receipt:
        self.documents.pop(target_id, None)
        return Receipt(target_id, "memory-void")

    async def held(self) -> list[HeldDocument]:
        return [HeldDocument(k, k, d.content_hash) for k, d in sorted(self.documents.items())]


class MemoryPlugin(TargetPlugin):
    """The plugin, registered by the entry point ``memory_entry_point`` installs."""

    name: ClassVar[str] = "memory"
    settings: ClassVar[type[TargetSettings]] = MemorySettings

    def open(self, settings: MemorySettings, env: TargetEnvironment) -> Target:
        return MemoryTarget(env.books.name, settings.label)


@pytest.fixture
def memory_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution (a ``.dist-info`` on ``sys.path``) whose only content is a
    ``ledgerhub.targets`` entry point naming ``MemoryPlugin``: nothing in ledgerhub names it."""
    site = tmp_path / "site"
    dist = site / "ledgerhub_memory_target-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ledgerhub-memory-target\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[ledgerhub.targets]\nmemory = {__name__}:MemoryPlugin\n"
    )
    monkeypatch.syspath_prepend(str(site))
    targets.cache_clear()
    yield
    targets.cache_clear()  # the next caller reads the entry points without it


def _config(path: Path, sync: str) -> Path:
    path.write_text(f'[tenants.default]\ntimezone = "UTC"\n\n[tenants.default.sync]\n{sync}')
    return path


# ------------------------------------------------------------------ validation at load


def test_the_built_in_targets_register_through_entry_points() -> None:
    found = targets()
    assert {"beancount", "xero"} <= set(found)
    for name, plugin in found.items():
        assert isinstance(plugin, TargetPlugin)
        assert plugin.name == name
        assert issubclass(plugin.settings, TargetSettings)


def test_an_unknown_target_names_the_installed_ones(tmp_path: Path) -> None:
    path = _config(tmp_path / "ledgerhub.toml", 'target = "sage"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    installed = ", ".join(sorted(targets()))
    assert str(caught.value) == (
        f"{path}:4: tenants.default.sync.target: 'sage' is not one of the installed "
        f"targets ({installed})"
    )
    assert {"beancount", "xero", "quickbooks"} <= set(targets())


def test_an_entry_point_target_is_one_of_the_installed_ones(memory_entry_point: None) -> None:
    with pytest.raises(ConfigError) as caught:
        sync_settings("default", {"target": "nowhere"})
    installed = str(caught.value).rpartition("(")[2].rstrip(")").split(", ")
    assert {"beancount", "memory", "xero"} <= set(installed)


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ('target = "beancount"\npath = 5\n', "tenants.default.sync.path: a file path is a string"),
        ('target = "beancount"\nmode = "weekly"\n',
         "tenants.default.sync.mode: 'weekly' is not one of"),
        ('target = "xero"\ntenant_id = ""\nclient_id = "c"\nclient_secret = "env:X"\n'
         'refresh_token_file = "r"\n',
         "tenants.default.sync.tenant_id: expected a non-empty string"),
        ('target = "xero"\ntenant_id = "o"\nclient_id = "c"\nclient_secret = "env:X"\n'
         'refresh_token_file = "r"\ntoken_url = "ftp://identity.xero.com/connect/token"\n',
         "tenants.default.sync.token_url: expected an https:// URL (http:// only to this "
         "machine), got 'ftp://identity.xero.com/connect/token'"),
        ('target = "xero"\ntenant_id = "o"\nclient_id = "c"\nclient_secret = "env:X"\n'
         'refresh_token_file = "r"\ntimeout = true\n',
         "tenants.default.sync.timeout: expected a positive number of seconds"),
    ],
)  # fmt: skip
def test_a_targets_bad_key_is_refused_with_its_key_path(
    tmp_path: Path, sync: str, message: str
) -> None:
    path = _config(tmp_path / "ledgerhub.toml", sync)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:4: {message}"), caught.value


def test_an_entry_point_targets_own_keys_are_validated_by_its_model(
    tmp_path: Path, memory_entry_point: None
) -> None:
    cases = {
        'target = "memory"\n': "tenants.default.sync: the memory target needs label",
        'target = "memory"\nlabel = "x"\ncolour = "red"\n':
            "tenants.default.sync: unknown key 'colour' for target 'memory'",
        'target = "memory"\nlabel = "x"\nbatching = { size = 0 }\n':
            "tenants.default.sync.batching.size: a batch holds at least one document",
    }  # fmt: skip
    for sync, message in cases.items():
        path = _config(tmp_path / "ledgerhub.toml", sync)
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert str(caught.value) == f"{path}:4: {message}"
    chosen = sync_settings("default", {"target": "memory", "label": "x", "mode": "daily"})
    assert chosen is not None
    assert (chosen.target, chosen.mode) == ("memory", "daily")
    assert chosen.options == MemorySettings(label="x", batching=Batching(size=10))


# ------------------------------------------------------------------ opened and sent to


async def test_a_target_installed_only_through_an_entry_point_is_sent_to(
    dsn: str,
    store: EventStore,
    config: Path,
    books: Books,
    memory_entry_point: None,
) -> None:
    _config(config, 'target = "memory"\nmode = "per_transaction"\nlabel = "books"\n')
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    wanted = await documents(books.conn, target="memory")
    assert wanted  # the projection computed documents for the plugin's target

    async with open_targets(load(Settings.from_env()), Settings.from_env().home) as pairs:
        assert [(tenant, type(target)) for tenant, target in pairs] == [("default", MemoryTarget)]
        target = pairs[0][1]
        assert isinstance(target, MemoryTarget)
        assert target.label == "books"
        await Sender(store, document_source()).run("default", target)
    assert sorted(target.documents) == sorted(r["idempotency_key"] for r in wanted.values())


# ------------------------------------------------------------------ the document source port


class _Fixed:
    """A DocumentSource that is not a projection: the sender must need nothing else."""

    def __init__(self, *docs: Document) -> None:
        self.docs = docs

    async def documents(self, conn: Connection, tenant: str, target: str) -> list[Document]:
        return [d for d in self.docs if (d.tenant, d.target) == (tenant, target)]

    async def last_positions(self, conn: Connection, tenant: str, target: str) -> dict[str, int]:
        return {}


async def test_the_sender_sends_what_its_document_source_gives(store: EventStore) -> None:
    doc = Document("acme", "memory", "hand/1", "journal", date(2024, 3, 1), "by hand",
                   (("1000", "USD", 100), ("4000", "USD", -100)))  # fmt: skip
    source = _Fixed(doc)
    assert isinstance(source, DocumentSource)
    target = MemoryTarget("acme", "x")
    await Sender(store, source).run("acme", target)
    assert list(target.documents) == [doc.idempotency_key]


def test_the_document_source_is_the_installed_projection_that_provides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert document_source() is Accounting

    class Other:  # a second provider
        name = "other"
        documents = Accounting.documents
        last_positions = Accounting.last_positions

    real = registry.discover
    monkeypatch.setattr(registry, "discover", lambda environ=None: {**real(environ), "o": Other})
    with pytest.raises(ConfigError, match=r"several installed projections .*: accounting, other"):
        document_source()
    monkeypatch.setattr(registry, "discover", lambda environ=None: {})
    with pytest.raises(ConfigError, match="no installed projection provides accounting documents"):
        document_source()


def test_the_sync_package_imports_no_projection_and_no_connector() -> None:
    code = (
        "import sys\n"
        "import hub.sync.loop, hub.sync.sender, hub.sync.settings, hub.sync.shadow, "
        "hub.sync.tenants\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('projections', 'connectors')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert found.stdout.strip() == "[]"
