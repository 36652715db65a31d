"""The Xero target: documents as Invoices, Payments, BankTransactions, BankTransfers and
ManualJournals (``shapes``), with Contacts created once.

Calls go through a small injectable ``Transport`` (aiohttp by default) to the Accounting API
(``https://api.xero.com/api.xro/2.0``); each write carries an ``Idempotency-Key``.

- Auth (``auth``): OAuth2 refresh-token grant; Xero rotates the refresh token on every refresh,
  and the new one is written back to the secrets file (mode 0600, atomic replace). Tokens are
  never logged.
- Limits per tenant (``limits``): at most 5 calls in flight and 60 in any 60 seconds.
- Errors (``transport``): 429 → ``TargetUnavailable`` with ``Retry-After``; 5xx, timeouts and
  dropped connections → ``TargetUnavailable`` (the sender retries; the same idempotency key makes
  a write Xero already applied come back as the same object); 400 → ``TargetRejected`` with
  Xero's validation messages; 401 → one refresh, then the call again.
- Amounts: minor units → exact decimal JSON numbers (never a float).
"""

from hub.sync.xero.auth import TOKEN_URL, Tokens
from hub.sync.xero.limits import Limits
from hub.sync.xero.target import API, XeroTarget
from hub.sync.xero.transport import AiohttpTransport, Response, Transport

__all__ = [
    "API",
    "TOKEN_URL",
    "AiohttpTransport",
    "Limits",
    "Response",
    "Tokens",
    "Transport",
    "XeroTarget",
]
