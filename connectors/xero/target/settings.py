"""``XeroSettings``: the Xero target's keys in a tenant's ``sync`` table.

::

    [tenants.default.sync]
    target = "xero"
    mode = "per_transaction"
    tenant_id = "…"                               # the Xero organisation
    client_id = "…"                               # plain, or env:NAME / file:PATH
    client_secret = "env:XERO_CLIENT_SECRET"      # env:NAME or file:PATH only
    refresh_token_file = "secrets/xero-refresh"   # rewritten with each rotated token
    # api_url, token_url (https, or http to this machine only), timeout (seconds, default 30)

Secrets stay references here, resolved only by ``XeroPlugin.open`` in the process that sends,
so a projection worker never holds them.
"""

from __future__ import annotations

from hub.spi.target import Seconds, SecretReference, ServiceUrl, TargetSettings, Text

API = "https://api.xero.com/api.xro/2.0"
"""The Accounting API."""
TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (a URL, not a secret)
"""Where OAuth2 tokens are refreshed."""


class XeroSettings(TargetSettings):
    """A tenant's Xero connection (``[tenants.NAME.sync]`` with ``target = "xero"``)."""

    tenant_id: Text
    """The Xero organisation (the ``xero-tenant-id`` header)."""
    client_id: Text
    """The OAuth2 app's client id, plain or ``env:``/``file:``."""
    client_secret: SecretReference
    """``env:NAME`` or ``file:PATH`` (never written in the config itself)."""
    refresh_token_file: Text
    """Holds the current refresh token; Xero rotates it and the sender rewrites the file."""
    api_url: ServiceUrl = API
    token_url: ServiceUrl = TOKEN_URL
    timeout: Seconds = 30.0
    """Seconds a call may take before it counts as timed out (and is retried)."""
