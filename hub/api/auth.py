"""Bearer-key authentication, checked against the access each route declares.

For a keyed route, in this order: the key must be known and active (else 401); used from a
client address its ``allow_ips`` allow (else 403 naming the address); within its rate limit
(else 429 with ``Retry-After``: ``hub.api.key_cache.RateLimiter``); and hold a scope granting
the route's access (else 403). A request that gets past the address check counts as a use of
the key (``KeyStore.record_use``: in memory, written in batches).

The client address is the socket's peer, unless that peer is a trusted proxy
(``serve --trust-proxy CIDR``): then it is the right-most ``X-Forwarded-For`` entry that is not
itself a trusted proxy. Keys are looked up by their SHA-256 (an index lookup: the database
compares hashes, never the key itself), and a key is never logged.

Until the operations alert channel exists, usage anomalies are warning log lines (logger
``hub.api.auth``), never naming more of a key than its prefix: repeated authentication failures
from one client address (``FAILURES_TO_WARN`` within ``FAILURE_WINDOW_SECONDS``, once per
window), a key used from an address its allowlist refuses, and a key going over its rate limit
(once per window per key).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiohttp import web

from hub.api.context import API_KEY, ROUTE_AUTH, context
from hub.api.key_cache import RateLimiter
from hub.api.problems import Handler, RateLimited
from hub.domain.keys import Address, ApiKey, Network, in_networks, key_digest
from hub.errors import Forbidden, Unauthenticated

log = logging.getLogger(__name__)

_BEARER = "bearer "
FAILURES_TO_WARN = 20
FAILURE_WINDOW_SECONDS = 60.0
_MAX_WATCHED = 10_000
_SHOWN = 64
"""At most this much of a client-supplied address is repeated in an answer or a log line."""


class AnomalyWatch:
    """Counts, in this process's memory, what ``hub.api.auth`` warns about (see the module
    docstring); one warning per address or key per window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, tuple[float, int]] = {}
        self._warned: dict[str, float] = {}

    def _once(self, what: str, now: float) -> bool:
        last = self._warned.get(what)
        if last is not None and now - last < FAILURE_WINDOW_SECONDS:
            return False
        if len(self._warned) >= _MAX_WATCHED:
            self._warned.clear()
        self._warned[what] = now
        return True

    def auth_failed(self, address: str) -> None:
        """A request from ``address`` had no valid key."""
        now = self._clock()
        start, count = self._failures.get(address, (now, 0))
        if now - start >= FAILURE_WINDOW_SECONDS:
            start, count = now, 0
        if len(self._failures) >= _MAX_WATCHED:
            self._failures.clear()
        self._failures[address] = (start, count + 1)
        if count + 1 >= FAILURES_TO_WARN and self._once(f"auth {address}", now):
            log.warning(
                "anomaly: %d failed authentications from %s within %.0f s",
                count + 1,
                address,
                FAILURE_WINDOW_SECONDS,
            )

    def refused_address(self, key: ApiKey, address: str) -> None:
        """``key`` was used from ``address``, which its allowlist refuses."""
        if self._once(f"address {key.id} {address}", self._clock()):
            log.warning("anomaly: key %s… used from %s, outside its allowlist", key.prefix, address)

    def over_rate(self, key: ApiKey) -> None:
        """``key`` went over its rate limit."""
        if self._once(f"rate {key.id}", self._clock()):
            log.warning("anomaly: key %s… is over its rate limit", key.prefix)


TRUSTED_PROXIES = web.AppKey("ledgerhub_trusted_proxies", tuple[Network, ...])
RATE_LIMITER = web.AppKey("ledgerhub_rate_limiter", RateLimiter)
ANOMALIES = web.AppKey("ledgerhub_anomalies", AnomalyWatch)


def current_key(request: web.Request) -> ApiKey:
    """The key that authenticated this request (only on key-authenticated routes)."""
    return request[API_KEY]


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> tuple[Address | None, str]:
    """The client's address and its text as received: the socket's ``peer``, or, when the peer
    is one of the ``trusted`` proxies, the right-most ``X-Forwarded-For`` entry that is not a
    trusted proxy (the left-most one if all are). An entry that is not an address is returned
    as (None, its text): the client cannot be told, and no allowlist admits it."""
    address = _address(peer) if peer else None
    if address is None or not trusted or not in_networks(address, trusted):
        return address, peer or "unknown"
    entries = [e.strip() for header in forwarded_for for e in header.split(",") if e.strip()]
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            return None, entry
        if not in_networks(address, trusted):
            return address, entry
    return address, entries[0] if entries else (peer or "unknown")


def _client(request: web.Request) -> tuple[Address | None, str]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host = peer[0] if isinstance(peer, tuple | list) and peer else None
    trusted = request.app.get(TRUSTED_PROXIES, ())
    return client_address(host, request.headers.getall("X-Forwarded-For", []), trusted)


async def _authenticate(request: web.Request) -> ApiKey:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith(_BEARER) or not header[len(_BEARER) :].strip():
        raise Unauthenticated("this route needs an API key: Authorization: Bearer <key>")
    key = await context(request).find_key(key_digest(header[len(_BEARER) :].strip()))
    if key is None:
        raise Unauthenticated("the API key is not known")
    state = key.state(datetime.now(UTC))
    if state != "active":
        raise Unauthenticated(f"the API key {key.prefix}… is {state}")
    return key


def _watch(request: web.Request) -> AnomalyWatch | None:
    return request.app.get(ANOMALIES)


def _admit(request: web.Request, key: ApiKey) -> None:
    """The address and rate checks for an active key (403, 429); counts the use."""
    if key.allow_ips:
        address, text = _client(request)
        if address is None or not key.allows_address(address):
            text = text[:_SHOWN]
            if (watch := _watch(request)) is not None:
                watch.refused_address(key, text)
            raise Forbidden(
                f"the API key {key.prefix}… may not be used from {text}: it is allowed from "
                + ", ".join(str(net) for net in key.allow_ips)
            )
    context(request).keys.record_use(key.id, datetime.now(UTC))
    limiter = request.app.get(RATE_LIMITER)
    wait = limiter.take(key) if limiter is not None else None
    if wait is not None:
        if (watch := _watch(request)) is not None:
            watch.over_rate(key)
        rate = key.rate or (limiter.default if limiter is not None else None)
        raise RateLimited(
            f"the API key {key.prefix}… is over its rate limit ({rate}); retry later",
            retry_after=wait,
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Enforce the matched route's declared auth; refuse routes that declare none."""
    match = request.match_info
    if match.http_exception is not None:  # 404/405: nothing to protect
        raise match.http_exception
    auth = request.app[ROUTE_AUTH].get(match.route)
    if auth is None:  # fail closed
        raise Forbidden("this route declares no authentication and is refused")
    if auth.kind == "key":
        try:
            key = await _authenticate(request)
        except Unauthenticated:
            if (watch := _watch(request)) is not None:
                watch.auth_failed(_client(request)[1][:_SHOWN])
            raise
        _admit(request, key)
        if auth.access is not None and not key.grants(auth.access):
            raise Forbidden(f"the key's scopes ({key.scope}) do not grant {auth.access} access")
        request[API_KEY] = key
    return await handler(request)
