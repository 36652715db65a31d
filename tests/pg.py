"""Moved to ``hub.testing.postgres`` (the pytest plugin's PostgreSQL); kept for the tests that
import ``Databases`` from here."""

from hub.testing.postgres import Databases, server

__all__ = ["Databases", "server"]
