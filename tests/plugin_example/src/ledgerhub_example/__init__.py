"""Example ledgerhub plugins, shipped the way any third-party package ships them.

- ``connector``: ``AcmePayConnector`` (entry point ``ledgerhub.connectors``: ``acmepay``), for
  AcmePay, a made-up card processor: its parts are
  - ``webhook``: ``AcmePayVerifier`` (``Acme-Signature: t=…,v1=…``) and ``sign``;
  - ``models``: ``AcmePayParser``, typed models of AcmePay's payment, refund and payout;
  - ``mapping``: ``AcmePayMapper``, AcmePay events to canonical facts (``Payment``,
    ``Refund``, ``Payout``), with ``samples.json`` beside it.
- ``target``: ``JsonLinesPlugin`` (entry point ``ledgerhub.targets``: ``jsonl``), an accounting
  target that keeps a tenant's documents as an append-only JSON-lines journal.

Only the hub's plugin surface is imported: ``hub.spi``, ``hub.domain`` and ``hub.errors``.
"""
