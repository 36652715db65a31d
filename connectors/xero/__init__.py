"""Xero, both ways.

- In (this module, entry point ``ledgerhub.connectors``: ``xero``): ``XeroConnector``, signed
  webhooks (``x-xero-signature``) with the intent-to-receive handshake (``webhook``).
- Out (``target``, entry point ``ledgerhub.targets``: ``xero``): ``XeroPlugin`` and
  ``XeroTarget``, the accounting target that writes documents through the Accounting API.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.xero.webhook import XeroVerifier
from hub.spi.connector import Connector
from hub.spi.verifier import WebhookVerifier


class XeroConnector(Connector):
    """Xero organisations: change notices for invoices, contacts, credit notes, subscriptions."""

    name = "xero"
    version = "1"
    event_types = ("xero.*",)
    verifier: ClassVar[WebhookVerifier | None] = XeroVerifier()
