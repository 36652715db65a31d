"""The API tests' fixtures (a real hub on 127.0.0.1 and a client session) for the ops tests."""

from __future__ import annotations

from tests.api.conftest import api, config_path, http, hub, hub_config, limits

__all__ = ["api", "config_path", "http", "hub", "hub_config", "limits"]
