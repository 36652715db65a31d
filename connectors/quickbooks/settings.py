"""``QuickBooksSettings``: the QuickBooks Online target's keys in a tenant's ``sync`` table.

::

    [tenants.default.sync]
    target = "quickbooks"
    mode = "per_transaction"
    realm_id = "9341452…"                          # the QuickBooks company (realm id)
    client_id = "…"                               # plain, or env:NAME / file:PATH
    client_secret = "env:QBO_CLIENT_SECRET"       # env:NAME or file:PATH only
    refresh_token_file = "secrets/qbo-refresh"    # rewritten with each rotated token
    # api_url, token_url (https, or http to this machine only), minor_version (default 75),
    # timeout (seconds, default 30)

Secrets stay references here, resolved only by ``QuickBooksPlugin.open`` in the process that
sends, so a projection worker never holds them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hub.spi.target import Seconds, SecretReference, ServiceUrl, TargetSettings, Text

API = "https://quickbooks.api.intuit.com/v3"
"""The Accounting API v3 (production; Intuit's sandbox is
``https://sandbox-quickbooks.api.intuit.com/v3``)."""
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 (a URL)
"""Where OAuth2 tokens are refreshed."""
MINOR_VERSION = 75
"""The ``minorversion`` sent with every call (Intuit serves 75 for anything lower since 2025)."""


class QuickBooksSettings(TargetSettings):
    """A tenant's QuickBooks Online company (``[tenants.NAME.sync]`` with
    ``target = "quickbooks"``)."""

    realm_id: Text
    """The company's realm id (in every API path)."""
    client_id: Text
    """The OAuth2 app's client id, plain or ``env:``/``file:``."""
    client_secret: SecretReference
    """``env:NAME`` or ``file:PATH`` (never written in the config itself)."""
    refresh_token_file: Text
    """Holds the current refresh token; Intuit rotates it and the sender rewrites the file."""
    api_url: ServiceUrl = API
    """The API's base, up to and including ``/v3``."""
    token_url: ServiceUrl = TOKEN_URL
    minor_version: Annotated[int, Field(strict=True, ge=1)] = MINOR_VERSION
    """The ``minorversion`` query parameter sent with every call."""
    timeout: Seconds = 30.0
    """Seconds a call may take before it counts as timed out (and is retried)."""
