"""The framework's supported surface for plugins: what a connector, a target or a projection
package may import from ``hub`` besides the pure models of ``hub.domain`` and the errors of
``hub.errors`` (an import contract in ``pyproject.toml`` keeps it so).

- ``connector``: ``Connector``, the declared parts of a spoke (entry points
  ``ledgerhub.connectors``).
- ``verifier``: ``WebhookVerifier`` and the delivery it checks (and may sign); HMAC helpers.
- ``parser``: ``PayloadParser`` and ``ProviderModel``: raw payloads to typed provider models.
- ``mapper``: ``FactMapper``, ``MapContext``, ``SourceEvent``: raw events to canonical facts.
- ``importer``: ``FileImporter``: statement files to events.
- ``limits``: ``CallLimits``: an API's calls in flight and per minute, kept by the caller.
- ``puller``: ``Puller`` with its ``PulledStream``s and ``Page``s: a spoke's API read for
  history and missed changes, cursors kept by the hub; the HTTP ``Transport`` and retry helper.
- ``target``: ``TargetPlugin`` (entry points ``ledgerhub.targets``) with its ``TargetSettings``
  model, the ``Target`` it opens per tenant, and field types for settings.
- ``health``: ``Freshness`` (a receiving connector's health check) and ``HealthCheckedTarget``
  (a target's); a puller's check is ``Puller.health_check``.
- ``sealed``: ``SealedFile``, a secret file a target rewrites (a refresh token), sealed at rest
  under ``LEDGERHUB_SECRET_KEY`` (``TargetEnvironment.sealed_file``).
- ``projection``: ``Projection``, ``Context``, ``View``: a read model over the log (entry points
  ``ledgerhub.projections``) with its tables, views, routes and config section.
- ``documents``: ``DocumentSource``, the port a projection provides for the accounting sender;
  ``reports``: ``TrialBalanceSource``, ``JournalSource`` and ``ReconciliationSource``, the
  ports for the books' and the reconciliation's reports (the CLI's reports and exports).
- ``http``: what a projection's routes use (``ApiRoute``, scopes, JSON and CSV answers).
- ``exports``: rows as CSV or typed Excel files, for ``ledgerhub export`` and for a route asked
  for a file (``file_response``).
- ``config``: the configuration types a plugin reads (``Config``, ``TenantBooks``, …).
- ``registry``: the installed connectors, targets and projections, and the port providers.
- ``signing``: HMAC and constant-time comparison for verifiers.
"""
