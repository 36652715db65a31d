"""ledgerhub's framework: the event log, ingestion, the projection runtime, the accounting
sender, the CLI and the plugin surface. It imports no connector and no projection; those plug in
through entry points and import only ``hub.spi``, ``hub.domain`` and ``hub.errors``.

- ``domain``: pure models and rules (events, money, facts, documents, mapping, keys).
- ``spi``: the supported surface for plugins (connectors, targets, projections).
- ``config``: the environment and the TOML file, loaded once into one ``Config``.
- ``store``: the only code that speaks SQL to the log and the framework's tables.
- ``runtime``: runs projections (workers, leases, jobs, parked events).
- ``api``: the HTTP API; ``sync``: the accounting sender; ``usecases``: what the CLI runs;
  ``cli``: the ``ledgerhub`` command; ``testing``: the pytest plugin and contract suites.
- ``errors``: every error, grouped by how it is handled; ``telemetry``: metrics and traces.
"""
