"""Use cases over the event store: what the CLI commands (and tests) run, each a module.

- ``verify``: walk the hash chain and name the first position where it breaks
  (``ledgerhub verify``).
- ``signatures``: re-check every stored webhook delivery against its connection's secret with
  its connector's verifier (``ledgerhub verify --signatures``).
- ``file_import``: a statement file into events, all or nothing, read by the importer of the
  connector named by its kind, found through the registry (``ledgerhub import bank``).
- ``webhook_samples``: sample Stripe and Shopify deliveries, signed by the installed connector's
  verifier (``ledgerhub webhooks send``).
- ``demo``: sample activity into the log twice, booked, synced to Beancount and verified
  (``ledgerhub demo``).

``samples/`` holds the sample data of ``demo`` and ``webhook_samples`` (sources in its
``NOTICE.md``).
"""
