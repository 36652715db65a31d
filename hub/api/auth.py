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

The client address so resolved is what a handler sees as ``request.remote`` (and
``client_of``): the audit trail (``hub.api.audit``) records it, and a projection's route can
read it without importing this module.

Usage anomalies are watched here (``hub.api.anomalies.AnomalyWatch``): a key used from a new
network or far above its usual rate, and repeated authentication failures from one address,
raise an alert; a key used from an address its allowlist refuses, or going over its rate limit,
is a warning log line. Log lines never name more of a key than its prefix.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiohttp import web

from hub.api.anomalies import (
    FAILURE_WINDOW_SECONDS,
    FAILURES_TO_WARN,
    AnomalyWatch,
    network_of,
)
from hub.api.context import API_KEY, ROUTE_AUTH, context
from hub.api.key_cache import RateLimiter
from hub.api.problems import Handler, RateLimited
from hub.domain.keys import Address, ApiKey, Network, in_networks, key_digest
from hub.errors import Forbidden, Unauthenticated

log = logging.getLogger(__name__)

_BEARER = "bearer "
_SHOWN = 64
"""At most this much of a client-supplied address is repeated in an answer or a log line."""


TRUSTED_PROXIES = web.AppKey("ledgerhub_trusted_proxies", tuple[Network, ...])
RATE_LIMITER = web.AppKey("ledgerhub_rate_limiter", RateLimiter)
ANOMALIES = web.AppKey("ledgerhub_anomalies", AnomalyWatch)
CLIENT = web.RequestKey("ledgerhub_client", str)
"""The client address of a key-authenticated request, as ``client_address`` resolved it."""

__all__ = [
    "ANOMALIES",
    "CLIENT",
    "FAILURES_TO_WARN",
    "FAILURE_WINDOW_SECONDS",
    "RATE_LIMITER",
    "TRUSTED_PROXIES",
    "AnomalyWatch",
    "active_key",
    "admit",
    "auth_middleware",
    "client_address",
    "client_of",
    "current_key",
]


def current_key(request: web.Request) -> ApiKey:
    """The key that authenticated this request (only on key-authenticated routes)."""
    return request[API_KEY]


def client_of(request: web.Request) -> str:
    """The client address of a key-authenticated request (``--trust-proxy`` honoured), as
    text; the socket's peer otherwise."""
    return request.get(CLIENT) or request.remote or "unknown"


@functools.lru_cache(maxsize=4096)  # parsed once per client, not once per request
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
    return await active_key(request, header[len(_BEARER) :].strip())


async def active_key(request: web.Request, text: str) -> ApiKey:
    """The active key ``text`` is (as a bearer key is checked); ``Unauthenticated`` when it is
    not known, or is revoked, expired or rotated out."""
    key = await context(request).find_key(key_digest(text))
    if key is None:
        raise Unauthenticated("the API key is not known")
    state = key.state(datetime.now(UTC))
    if state != "active":
        raise Unauthenticated(f"the API key {key.prefix}… is {state}")
    return key


def _watch(request: web.Request) -> AnomalyWatch | None:
    return request.app.get(ANOMALIES)


def authentication_failed(request: web.Request) -> None:
    """Count a request that came with no valid key against its client address (repeated
    failures raise an alert: ``hub.api.anomalies``)."""
    if (watch := _watch(request)) is not None:
        watch.auth_failed(_client(request)[1][:_SHOWN])


_NETWORKS: dict[Address, str] = {}


def _network(address: Address) -> str:
    """``network_of(address)``, remembered (a dictionary lookup per request)."""
    network = _NETWORKS.get(address)
    if network is None:
        if len(_NETWORKS) >= 10_000:
            _NETWORKS.clear()
        network = _NETWORKS[address] = network_of(address)
    return network


def admit(request: web.Request, key: ApiKey) -> None:
    """The address and rate checks for an active key (403, 429), as for every keyed route;
    counts the use (and watches it: ``hub.api.anomalies``); the client address is kept in
    ``request[CLIENT]``."""
    address, text = _client(request)
    request[CLIENT] = text[:_SHOWN]
    if key.allow_ips and (address is None or not key.allows_address(address)):
        text = text[:_SHOWN]
        if (watch := _watch(request)) is not None:
            watch.refused_address(key, text)
        raise Forbidden(
            f"the API key {key.prefix}… may not be used from {text}: it is allowed from "
            + ", ".join(str(net) for net in key.allow_ips)
        )
    keys = context(request).keys
    network = None if address is None else _network(address)
    keys.record_use(key.id, datetime.now(UTC), network)
    if (watch := _watch(request)) is not None:
        watch.key_used(key, network, lambda: keys.networks_seen(key.id))
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
            authentication_failed(request)
            raise
        admit(request, key)
        if auth.access is not None and not key.grants(auth.access):
            raise Forbidden(f"the key's scopes ({key.scope}) do not grant {auth.access} access")
        request[API_KEY] = key
        client = request[CLIENT]
        if client != request.remote:  # behind a trusted proxy: the handler sees the client
            request = request.clone(remote=client)
    return await handler(request)
