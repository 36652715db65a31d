"""Testing support for the hub and its plugins, shipped as a pytest plugin (entry point
``pytest11``: ``ledgerhub``, active wherever ledgerhub is installed; it needs pytest-asyncio).

- ``plugin``: the fixtures ``databases`` (session: a real PostgreSQL and a migrated template),
  ``dsn`` (a fresh migrated database per test) and ``store`` (the ``EventStore`` on it).
- ``postgres``: ``server()`` (``LEDGERHUB_TEST_DSN``, else testcontainers when Docker answers,
  else the embedded PostgreSQL) and ``Databases`` (throwaway databases from the template).
- ``connector``: ``ConnectorContract``, the connector contract suite.
- ``target``: ``TargetContract`` and ``TargetSubject``, the accounting-target contract suite.
- ``projection``: ``ProjectionContract``, the projection contract suite.

A package runs a suite on its own class by subclassing it in a test module::

    from hub.testing import ConnectorContract, TargetContract

    class TestAcmePay(ConnectorContract):
        connector = AcmePayConnector

    class TestJsonLines(TargetContract):
        plugin = JsonLinesPlugin()
        settings = {"path": "books.jsonl"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

# The suites are plain ``assert``s: have pytest rewrite them (for its failure messages) whether
# this package was installed editable or not. Must happen before they are imported.
pytest.register_assert_rewrite(
    "hub.testing.connector", "hub.testing.target", "hub.testing.projection"
)

if TYPE_CHECKING:
    from hub.testing.connector import ConnectorContract
    from hub.testing.postgres import Databases, server
    from hub.testing.projection import ProjectionContract
    from hub.testing.target import TargetContract, TargetSubject

__all__ = [
    "ConnectorContract",
    "Databases",
    "ProjectionContract",
    "TargetContract",
    "TargetSubject",
    "server",
]

_WHERE = {
    "ConnectorContract": "hub.testing.connector",
    "Databases": "hub.testing.postgres",
    "server": "hub.testing.postgres",
    "ProjectionContract": "hub.testing.projection",
    "TargetContract": "hub.testing.target",
    "TargetSubject": "hub.testing.target",
}


def __getattr__(name: str) -> Any:
    """Import a suite only when it is asked for, so loading the pytest plugin stays light."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hub.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
