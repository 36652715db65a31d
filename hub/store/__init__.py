"""The persistence layer: the only code in ledgerhub that speaks SQL.

- ``provision``: find or start a PostgreSQL server (``LEDGERHUB_DSN`` or the embedded one).
- ``schema``: ordered migrations from ``migrations/*.sql``, recorded in
  ``ledgerhub.schema_migrations``.
- ``pool``: connection pools that run as the hub's restricted role.
- ``events``: the event store (append with group commit, reads, the chain walk).
- ``keys``: API keys by SHA-256 (create, look up, list, revoke; revocations are notified).
- ``health``: readiness (database reachable, schema current).
"""

from hub.store.events import EventStore

__all__ = ["EventStore"]
