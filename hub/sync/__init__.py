"""Accounting sync: sending the documents a projection computed to each tenant's target.

- ``settings``: ``sync_settings``, a tenant's ``sync`` table validated (the target looked up among
  the installed plugins, its keys by the plugin's settings model) into ``SyncSettings``.
- ``tenants``: ``open_targets``, every syncing tenant's target opened by its plugin.
- ``sender``: ``Sender``, one run per (tenant, target): what is new or changed is sent, once.
- ``shadow``: ``compare``, the differences between the documents and what a target holds.
- ``loop``: ``sync_forever``, the sender every few seconds beside the projection workers.

The documents come through the ``hub.spi.documents.DocumentSource`` port (the installed
projection that provides it: ``hub.spi.registry.document_source``), the targets are plugins
(``hub.spi.target``, entry points ``ledgerhub.targets``): this package imports neither
``projections`` nor ``connectors``.
"""
