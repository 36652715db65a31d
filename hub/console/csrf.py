"""CSRF protection for every console form POST.

Two checks, both required: the request must come from the console's own pages (``Origin``,
when sent, names this server's host; ``Sec-Fetch-Site``, when sent, is ``same-origin``), and its
hidden ``csrf`` field must equal the session's synchronizer token (compared in constant time).
The sign-in form, which has no session yet, carries a token that must equal the one in a
short-lived HttpOnly, SameSite=Strict cookie set with the form (double submit).
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from hub.errors import Forbidden

FIELD = "csrf"
"""The hidden form field holding the token."""
PRE_COOKIE = "ledgerhub_console_signin"
"""The sign-in form's token cookie."""


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


def same_origin(request: web.Request) -> None:
    """``Forbidden`` unless the POST comes from this server's own pages."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        raise Forbidden(f"a cross-site form post is refused (Sec-Fetch-Site: {site[:32]})")
    origin = request.headers.get("Origin")
    # the host only: behind a TLS-terminating proxy the request's own scheme is http
    if origin is not None and origin.partition("://")[2] != request.host:
        raise Forbidden(f"a form post from another origin is refused (Origin: {origin[:64]})")


def check(request: web.Request, expected: str | None, sent: object) -> None:
    """``Forbidden`` unless the request is same-origin and ``sent`` (the form's field) equals
    ``expected`` (the session's or the sign-in cookie's token)."""
    same_origin(request)
    if not isinstance(sent, str) or not sent or not expected:
        raise Forbidden("the form's CSRF token is missing: reload the page and try again")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("the form's CSRF token is wrong: reload the page and try again")
