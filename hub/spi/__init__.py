"""The framework's supported surface for plugins: what a connector, a target or a projection
package may import from ``hub`` (besides the pure models of ``hub.domain``).

- ``connector``: ``Connector``, the declared parts of a spoke (entry points
  ``ledgerhub.connectors``).
- ``verifier``: ``WebhookVerifier`` and the delivery it checks; helpers for HMAC schemes.
- ``parser``: ``PayloadParser`` and ``ProviderModel``: raw payloads to typed provider models.
- ``mapper``: ``FactMapper``, ``MapContext``, ``SourceEvent``: raw events to canonical facts.
- ``importer``: ``FileImporter``: statement files to events.
- ``target``: ``Target`` and ``TargetPlugin``: an accounting system documents are sent to
  (entry points ``ledgerhub.targets``), with its own settings model.
- ``projection``: ``Projection`` and ``Context``: a read model over the log (entry points
  ``ledgerhub.projections``), with its tables, views and HTTP routes.
- ``http``: what a projection's routes use (``ApiRoute``, scopes, JSON and CSV answers).
- ``registry``: the installed connectors, targets and projections.
- ``signing``: HMAC and constant-time comparison for verifiers.

Errors a plugin raises are in ``hub.errors`` (re-exported here), configuration types in
``hub.config`` (re-exported here).
"""
