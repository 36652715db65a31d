"""The QuickBooks Online target: documents as Invoices, Payments, Purchases, Deposits,
Transfers, RefundReceipts and JournalEntries (``shapes``), with Customers and Service items
created once.

- ``QuickBooksPlugin`` (this module): the ``ledgerhub.targets`` entry point ``quickbooks``;
  builds a tenant's ``QuickBooksTarget`` from its ``QuickBooksSettings`` (``settings``),
  resolving the secrets.
- ``client``: ``QuickBooksTarget``, create/update/void/held against the Accounting API v3;
  ``minorversion`` on every call, a ``requestid`` on every write, ``SyncToken`` on updates.
- ``transport``: a small injectable ``Transport`` (aiohttp by default). Errors: 429 →
  ``TargetUnavailable`` (``Retry-After`` when given); 5xx, timeouts and dropped connections →
  ``TargetUnavailable`` (the sender retries with backoff; the same ``requestid`` makes a write
  QuickBooks already applied come back as the same entity); a 4xx ``Fault`` →
  ``TargetRejected`` with QuickBooks' ``Message``/``Detail``; 401 → one refresh, then the call
  again. Amounts: minor units → exact decimal JSON numbers (never a float).
- ``auth``: OAuth2 refresh-token grant at Intuit's token endpoint; a rotated refresh token is
  written back to its file (mode 0600, atomic replace) before it is used. Tokens are never
  logged.
- ``limits``: per company, at most 10 calls in flight and 500 in any minute.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.quickbooks.auth import Tokens
from connectors.quickbooks.client import QuickBooksTarget
from connectors.quickbooks.limits import Limits
from connectors.quickbooks.settings import API, MINOR_VERSION, TOKEN_URL, QuickBooksSettings
from connectors.quickbooks.transport import AiohttpTransport, Fault, Response, Transport
from hub.errors import ConfigError
from hub.spi.target import Target, TargetEnvironment, TargetPlugin, TargetSettings

__all__ = [
    "API",
    "MINOR_VERSION",
    "TOKEN_URL",
    "AiohttpTransport",
    "Fault",
    "Limits",
    "QuickBooksPlugin",
    "QuickBooksSettings",
    "QuickBooksTarget",
    "Response",
    "Tokens",
    "Transport",
]


class QuickBooksPlugin(TargetPlugin):
    """A QuickBooks Online company per tenant, through the Accounting API v3."""

    name: ClassVar[str] = "quickbooks"
    settings: ClassVar[type[TargetSettings]] = QuickBooksSettings

    def open(self, settings: QuickBooksSettings, env: TargetEnvironment) -> Target:
        """The tenant's QuickBooks target: secrets read now (``ConfigError`` naming the key
        when one cannot be), the refresh-token file relative to the config file, calls through
        the shared HTTP session."""
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
        return QuickBooksTarget(
            transport,
            tokens,
            settings.realm_id,
            api=settings.api_url,
            minor_version=settings.minor_version,
            accounts=env.books.accounts,
        )
