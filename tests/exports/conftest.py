"""Fixtures for the export tests: the ledger tests' config file and HTTP server, and the
reconciliation tests' reader."""

from __future__ import annotations

from tests.ledger.conftest import config
from tests.ledger.test_http import api, hub
from tests.reconciliation.conftest import recon

__all__ = ["api", "config", "hub", "recon"]
