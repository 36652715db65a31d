"""Fixtures for the QuickBooks tests: the ledger's (a database connection, a config file)."""

from tests.ledger.conftest import books, config

__all__ = ["books", "config"]
