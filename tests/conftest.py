"""The PostgreSQL fixtures (``databases``, ``dsn``, ``store``) come from ``hub.testing``, the
pytest plugin ledgerhub installs (entry point ``pytest11``: ``ledgerhub``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    plugins = config.pluginmanager
    if not (plugins.has_plugin("ledgerhub") or plugins.has_plugin("hub.testing.plugin")):
        raise pytest.UsageError(
            "the ledgerhub pytest plugin (hub.testing) is not installed in this environment: "
            "pip install -e '.[dev]' -e tests/plugin_example"
        )
