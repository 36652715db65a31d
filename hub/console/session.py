"""Console sessions: signing in with a ``read`` or ``operate`` key, the session cookie, and
finding who is signed in on each request.

The key typed into the sign-in form is checked exactly as a bearer key is
(``hub.api.auth.active_key`` and ``admit``: known, active, allowed from the client's address,
within its rate limit) and must hold ``read`` or ``operate``. The session
(``hub.store.console_sessions``) keeps the key's id, never the key; each request finds the
session with its key's row as stored now and checks it again the same way, so revoking the key
ends the session at once. The cookie is HttpOnly, SameSite=Strict, limited to ``/console/``,
and Secure when the console is served over TLS.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import web

from hub.api.auth import active_key, admit, authentication_failed
from hub.api.context import API_KEY, context
from hub.domain.keys import Access, ApiKey
from hub.errors import Forbidden, Unauthenticated
from hub.store.console_sessions import ConsoleSession, ConsoleSessions

COOKIE = "ledgerhub_console"
"""The session cookie's name."""
PATH = "/console/"
SESSION_HOURS = 8
"""How long a session lasts (sign in again after)."""
CONSOLE_ACCESS = (Access.READ, Access.OPERATE)
"""A key needs one of these to sign in."""

SESSION = web.RequestKey("ledgerhub_console_session", ConsoleSession)


def sessions(request: web.Request) -> ConsoleSessions:
    """The session table on the hub's pool."""
    return ConsoleSessions(context(request).keys.pool)


def _may_sign_in(key: ApiKey) -> None:
    if not any(key.grants(access) for access in CONSOLE_ACCESS):
        raise Forbidden(f"the key's scopes ({key.scope}) do not grant read or operate access")


async def sign_in(request: web.Request, typed: str) -> tuple[str, ConsoleSession]:
    """Open a session for the key ``typed``: ``(cookie token, session)``; ``Unauthenticated``
    for a key that is not active, ``Forbidden`` for one without read or operate access or used
    from an address it is not allowed from, ``RateLimited`` over its rate."""
    typed = typed.strip()
    if not typed:
        raise Unauthenticated("type an API key with read or operate access")
    try:
        key = await active_key(request, typed)
    except Unauthenticated:
        authentication_failed(request)  # a guessed key counts as the API counts it
        raise
    admit(request, key)
    _may_sign_in(key)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(hours=SESSION_HOURS)
    if key.expires_at is not None:
        expires_at = min(expires_at, key.expires_at)
    await sessions(request).open(token, key.id, csrf, expires_at)
    return token, ConsoleSession(key, csrf, expires_at)


async def current(request: web.Request) -> ConsoleSession | None:
    """The session this request is signed in with (its key checked again), or None."""
    if SESSION in request:
        return request[SESSION]
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    session = await sessions(request).find(token)
    if session is None or session.key.state(datetime.now(UTC)) != "active":
        return None
    admit(request, session.key)
    _may_sign_in(session.key)
    request[SESSION] = session
    request[API_KEY] = session.key
    return session


async def sign_out(request: web.Request) -> None:
    """End the request's session (if any)."""
    token = request.cookies.get(COOKIE)
    if token:
        await sessions(request).close(token)


def set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Give the browser the session cookie."""
    response.set_cookie(
        COOKIE,
        token,
        path=PATH,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=SESSION_HOURS * 3600,
    )


def drop_cookie(response: web.StreamResponse) -> None:
    """Tell the browser to forget the session cookie."""
    response.del_cookie(COOKIE, path=PATH)
