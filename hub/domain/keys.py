"""API keys and scopes: what a key may do, how a key is made and how it is stored (hashed).

A key holds one or more scopes, may be restricted to client networks (``allow_ips``) and carry
a rate limit of its own (``rate``); a rotated key names its successor (``replaced_by``) and
stays valid until its ``expires_at`` (the end of the rotation's overlap).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.errors import InvalidInput

KEY_PREFIX = "lh_"
ALL_TENANTS = "*"
"""The tenant of an ``operate`` key issued for every tenant."""


class Access(StrEnum):
    """The kinds of access a route can require; each of a key's scopes grants exactly one."""

    INGEST = "ingest"
    READ = "read"
    OPERATE = "operate"


@dataclass(frozen=True)
class Scope:
    """A key's scope: ``ingest:<source>`` (``ingest:*``: every source), ``read`` or ``operate``."""

    access: Access
    source: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``Scope`` from its text form; ``InvalidInput`` naming the problem otherwise."""
        if text in (Access.READ, Access.OPERATE):
            return cls(Access(text))
        kind, sep, source = text.partition(":")
        if kind == Access.INGEST and sep and source and source.strip() == source:
            return cls(Access.INGEST, source)
        raise InvalidInput(
            f"scope {text!r} is not one of ingest:<source>, ingest:*, read, operate",
            errors=[{"field": "scope", "message": "unknown scope"}],
        )

    def __str__(self) -> str:
        return f"{self.access}:{self.source}" if self.access is Access.INGEST else str(self.access)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_RATE = re.compile(r"^([1-9][0-9]{0,8})/(s|m|h)$")
_PER = {"s": 1, "m": 60, "h": 3600}
_UNIT = {1: "s", 60: "m", 3600: "h"}


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most ``count`` requests per ``seconds`` (``50/s``, ``600/m``, ``1/h``).

    Enforced as a token bucket holding ``count`` tokens, refilled at ``count/seconds`` a second.
    """

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``Rate`` from ``<n>/s``, ``<n>/m`` or ``<n>/h``; ``InvalidInput`` otherwise."""
        match = _RATE.match(text.strip())
        if match is None:
            raise InvalidInput(
                f"rate {text!r} is not <n>/s, <n>/m or <n>/h (such as 50/s)",
                errors=[{"field": "rate", "message": "invalid rate"}],
            )
        return cls(int(match[1]), _PER[match[2]])

    @property
    def per_second(self) -> float:
        """Tokens added to the bucket each second."""
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count}/{_UNIT.get(self.seconds, str(self.seconds) + 's')}"


def parse_network(text: str) -> Network:
    """A client network from CIDR text (``10.0.0.0/8``, ``2001:db8::/32``; a bare address is
    one host); ``InvalidInput`` for anything else, host bits set included."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput(
            f"{text!r} is not a network in CIDR notation ({exc})",
            errors=[{"field": "allow_ip", "message": "invalid CIDR"}],
        ) from None


def in_networks(address: Address, networks: Iterable[Network]) -> bool:
    """Whether ``address`` is in any of ``networks`` (an IPv4-mapped IPv6 address counts as
    its IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the key itself: only its hash and a short prefix to recognise it)."""

    id: uuid.UUID
    tenant: str
    scopes: tuple[Scope, ...]
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    label: str | None = None
    allow_ips: tuple[Network, ...] = ()
    """Client networks the key may be used from; empty: any."""
    rate: Rate | None = None
    """The key's own rate limit; None: the server's default (``LEDGERHUB_RATE_LIMIT``)."""
    replaced_by: uuid.UUID | None = None
    """The key that rotated this one out (this one expires at the end of the overlap)."""
    last_used_at: datetime | None = None
    use_count: int = 0

    @property
    def scope(self) -> str:
        """The scopes as text, separated by spaces (``read operate``), for messages."""
        return " ".join(str(scope) for scope in self.scopes)

    def state(self, now: datetime) -> str:
        """``active``, ``expired``, ``rotated`` (its overlap is over) or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "rotated" if self.replaced_by is not None else "expired"
        return "active"

    def grants(self, access: Access) -> bool:
        """Whether one of this key's scopes grants ``access``."""
        return any(scope.access is access for scope in self.scopes)

    def may_ingest(self, tenant: str, source: str) -> bool:
        """Whether this key may append events for ``source`` of ``tenant``."""
        return self.tenant == tenant and any(
            scope.access is Access.INGEST and scope.source in (source, "*") for scope in self.scopes
        )

    def allows_address(self, address: Address | None) -> bool:
        """Whether the key may be used from ``address`` (None: an address that could not be
        told, allowed only for a key without ``allow_ips``)."""
        if not self.allow_ips:
            return True
        return address is not None and in_networks(address, self.allow_ips)

    def may_access_tenant(self, tenant: str) -> bool:
        """Whether this key's tenant covers ``tenant``."""
        return self.tenant in (tenant, ALL_TENANTS)


def new_key() -> str:
    """A fresh random key (256 bits), shown once to whoever creates it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> bytes:
    """The SHA-256 of a key: the only form in which it is stored or looked up."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_prefix(key: str) -> str:
    """The first characters of a key, enough for a person to tell keys apart in a list."""
    return key[: len(KEY_PREFIX) + 6]
