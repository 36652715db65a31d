"""Fixtures for accounting tests: the ledger's (a database connection, a config file)."""

from tests.ledger.conftest import books, config

__all__ = ["books", "config"]
