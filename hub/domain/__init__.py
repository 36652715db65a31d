"""The domain layer: pure models and rules, no I/O (no SQL, no HTTP; an import contract keeps
it so).

- ``events``: ``NewEvent`` and ``RecordedEvent``; ``chain``: the hash chain's canonical bytes.
- ``money``: ``Money`` in integer minor units, decimal parsing, currency exponents.
- ``facts``: the canonical facts connectors map raw events to (``Sale``, ``Payment``,
  ``Payout``, ``BalanceMovement`` …).
- ``documents``: ``Document``, what an accounting target should hold.
- ``mapping``: the declarative field-mapping engine (paths, transforms) and its schemas.
- ``keys``: API key scopes and access; ``projections``: the runtime's models (generations,
  leases, jobs); ``toml_lines``: the line of a key path in a TOML file, for FILE:LINE errors.
- ``sealing``: ``SecretKey``, sealing bytes at rest (AES-256-GCM, the key's id in the clear).
"""
