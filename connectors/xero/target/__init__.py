"""The Xero target: documents as Invoices, Payments, BankTransactions, BankTransfers and
ManualJournals (``shapes``), with Contacts created once.

- ``XeroPlugin`` (this module): the ``ledgerhub.targets`` entry point ``xero``; builds a
  tenant's ``XeroTarget`` from its ``XeroSettings`` (``settings``), resolving the secrets.
- ``client``: ``XeroTarget``, create/update/void/held against the Accounting API
  (``https://api.xero.com/api.xro/2.0``); each write carries an ``Idempotency-Key``.
- ``transport``: a small injectable ``Transport`` (aiohttp by default). Errors: 429 →
  ``TargetUnavailable`` with ``Retry-After``; 5xx, timeouts and dropped connections →
  ``TargetUnavailable`` (the sender retries; the same idempotency key makes a write Xero already
  applied come back as the same object); 400 → ``TargetRejected`` with Xero's validation
  messages; 401 → one refresh, then the call again. Amounts: minor units → exact decimal JSON
  numbers (never a float).
- ``auth``: OAuth2 refresh-token grant; Xero rotates the refresh token on every refresh, and the
  new one is written back to its file (mode 0600, atomic replace). Tokens are never logged.
- ``limits``: per tenant, at most 5 calls in flight and 60 in any 60 seconds.

Xero's webhooks (the other direction) are the connector's: ``connectors.xero.webhook``.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.xero.target.auth import Tokens
from connectors.xero.target.client import XeroTarget
from connectors.xero.target.limits import Limits
from connectors.xero.target.settings import API, TOKEN_URL, XeroSettings
from connectors.xero.target.transport import AiohttpTransport, Response, Transport
from hub.errors import ConfigError
from hub.spi.target import Target, TargetEnvironment, TargetPlugin, TargetSettings

__all__ = [
    "API",
    "TOKEN_URL",
    "AiohttpTransport",
    "Limits",
    "Response",
    "Tokens",
    "Transport",
    "XeroPlugin",
    "XeroSettings",
    "XeroTarget",
]


class XeroPlugin(TargetPlugin):
    """A Xero organisation per tenant, through the Accounting API."""

    name: ClassVar[str] = "xero"
    settings: ClassVar[type[TargetSettings]] = XeroSettings

    def open(self, settings: XeroSettings, env: TargetEnvironment) -> Target:
        """The tenant's Xero target: secrets read now (``ConfigError`` naming the key when one
        cannot be), the refresh-token file relative to the config file, calls through the
        shared HTTP session."""
        client_id = settings.client_id
        if client_id.startswith(("env:", "file:")):
            client_id = env.secret("client_id", client_id)
        secret = env.secret("client_secret", settings.client_secret)
        refresh = env.config_path(settings.refresh_token_file)
        if not refresh.is_file():
            raise ConfigError(f"{env.where}.refresh_token_file: {refresh} does not exist")
        transport = AiohttpTransport(env.http(), timeout=settings.timeout)
        tokens = Tokens(
            transport, client_id, secret, env.sealed_file(refresh), token_url=settings.token_url
        )
        return XeroTarget(
            transport, tokens, settings.tenant_id, api=settings.api_url, accounts=env.books.accounts
        )
