"""What is installed: connectors (entry points ``ledgerhub.connectors``), accounting targets
(``ledgerhub.targets``) and projections (``ledgerhub.projections``, plus
``LEDGERHUB_PROJECTIONS``: comma-separated ``module:Class`` import paths, for tests and for an
operator's own projection that is not packaged), among them the one that computes the
documents targets hold (``document_source``).

A broken plugin is a ``ConfigError`` naming it, never an import traceback.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Collection, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from hub.errors import ConfigError
from hub.spi.connector import Connector
from hub.spi.documents import DocumentSource
from hub.spi.projection import Projection
from hub.spi.reports import TrialBalanceSource
from hub.spi.target import TargetPlugin

CONNECTORS = "ledgerhub.connectors"
TARGETS = "ledgerhub.targets"


def _plugins(group: str, what: str) -> list[tuple[EntryPoint, object]]:
    """Each entry point of ``group`` with what it loads; ``ConfigError`` naming a ``what``
    plugin whose import fails."""
    found: list[tuple[EntryPoint, object]] = []
    for entry in entry_points(group=group):
        try:
            found.append((entry, entry.load()))
        except Exception as exc:  # a plugin's import error must name the plugin
            raise ConfigError(
                f"{what} plugin {entry.name!r} ({entry.value}) failed to load: {exc}"
            ) from exc
    return found


def _named(entry: EntryPoint, what: str, declared: str) -> None:
    if declared != entry.name:
        raise ConfigError(
            f"{what} plugin {entry.name!r} declares name {declared!r}; they must match"
        )


@functools.cache
def connectors() -> dict[str, type[Connector]]:
    """Every installed connector by name; ``ConfigError`` if an entry point is broken."""
    found: dict[str, type[Connector]] = {}
    for entry, loaded in _plugins(CONNECTORS, "connector"):
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            raise ConfigError(f"connector plugin {entry.name!r} ({entry.value}) is not a Connector")
        _named(entry, "connector", loaded.name)
        found[entry.name] = loaded
    return found


def connector(name: str) -> type[Connector] | None:
    """The installed connector called ``name``, or None."""
    return connectors().get(name)


@functools.cache
def targets() -> dict[str, TargetPlugin]:
    """Every installed accounting target by name (a ``TargetPlugin`` class is instantiated);
    ``ConfigError`` if an entry point is broken."""
    found: dict[str, TargetPlugin] = {}
    for entry, loaded in _plugins(TARGETS, "target"):
        plugin = loaded() if isinstance(loaded, type) else loaded
        if not isinstance(plugin, TargetPlugin):
            raise ConfigError(f"target plugin {entry.name!r} ({entry.value}) is not a TargetPlugin")
        _named(entry, "target", plugin.name)
        found[entry.name] = plugin
    return found


PROJECTIONS = "ledgerhub.projections"


def _load(spec: str, origin: str) -> type[Projection]:
    module_name, _, attr = spec.strip().partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{origin}: {spec!r} is not of the form module:Class")
    try:
        found: object = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{origin}: cannot load {spec!r}: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Projection)):
        raise ConfigError(f"{origin}: {spec!r} is not a Projection subclass")
    found.check()
    return found


def discover(
    environ: Mapping[str, str] | None = None, *, names: Collection[str] | None = None
) -> dict[str, type[Projection]]:
    """Every installed projection by name; ``ConfigError`` on a broken one or a name clash.

    With ``names``, only the entry points of those names are imported (an entry point's name
    must be its projection's name); ``LEDGERHUB_PROJECTIONS`` entries are always imported.
    """
    env = os.environ if environ is None else environ
    specs: list[tuple[str, str, str | None]] = [
        (ep.value, f"entry point {ep.name!r}", ep.name)
        for ep in entry_points(group=PROJECTIONS)
        if names is None or ep.name in names
    ]
    specs += [
        (spec, "LEDGERHUB_PROJECTIONS", None)
        for spec in env.get("LEDGERHUB_PROJECTIONS", "").split(",")
        if spec.strip()
    ]
    found: dict[str, type[Projection]] = {}
    for spec, origin, entry_name in specs:
        projection = _load(spec, origin)
        if entry_name is not None and projection.name != entry_name:
            raise ConfigError(
                f"{origin}: names projection {projection.name!r}; the entry point's name must be "
                "the projection's name"
            )
        other = found.get(projection.name)
        if other is not None and other is not projection:
            raise ConfigError(
                f"two projections are named {projection.name!r}: "
                f"{other.__module__}.{other.__qualname__} and {spec}"
            )
        found[projection.name] = projection
    return found


def provider(port: type, what: str, environ: Mapping[str, str] | None = None) -> type[Projection]:
    """The one installed projection whose class implements ``port`` (a runtime-checkable
    protocol such as ``DocumentSource``); ``ConfigError`` naming ``what`` when none or several
    do."""
    found: list[type[Projection]] = []
    for projection in discover(environ).values():
        candidate: object = projection  # the class itself implements the port
        if isinstance(candidate, port):
            found.append(projection)
    if not found:
        raise ConfigError(
            f"no installed projection provides {what} (install one that implements "
            f"{port.__module__}.{port.__qualname__})"
        )
    if len(found) > 1:
        names = ", ".join(sorted(getattr(p, "name", repr(p)) for p in found))
        raise ConfigError(f"several installed projections provide {what}: {names}")
    return found[0]


def document_source(environ: Mapping[str, str] | None = None) -> DocumentSource:
    """The installed projection that computes the documents targets should hold (its class
    implements ``hub.spi.documents.DocumentSource``, like the accounting projection)."""
    return cast(DocumentSource, provider(DocumentSource, "accounting documents", environ))


def trial_balance_source(environ: Mapping[str, str] | None = None) -> TrialBalanceSource:
    """The installed projection that keeps the books (its class implements
    ``hub.spi.reports.TrialBalanceSource``, like the ledger projection)."""
    return cast(TrialBalanceSource, provider(TrialBalanceSource, "a trial balance", environ))


def select(
    available: Mapping[str, type[Projection]], names: list[str] | None
) -> list[type[Projection]]:
    """The projections named (all if ``names`` is empty); ``ConfigError`` for an unknown one."""
    if not names:
        return list(available.values())
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ConfigError(
            f"unknown projection {unknown[0]!r} (known: {', '.join(sorted(available)) or 'none'})"
        )
    return [available[name] for name in names]
