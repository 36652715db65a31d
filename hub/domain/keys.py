"""API keys and scopes: what a key may do, how a key is made and how it is stored (hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.errors import InvalidInput

KEY_PREFIX = "lh_"
ALL_TENANTS = "*"
"""The tenant of an ``operate`` key issued for every tenant."""


class Access(StrEnum):
    """The kinds of access a route can require; a key's scope grants exactly one."""

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


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the key itself: only its hash and a short prefix to recognise it)."""

    id: uuid.UUID
    tenant: str
    scope: Scope
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    label: str | None = None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def may_ingest(self, tenant: str, source: str) -> bool:
        """Whether this key may append events for ``source`` of ``tenant``."""
        return (
            self.scope.access is Access.INGEST
            and self.tenant == tenant
            and self.scope.source in (source, "*")
        )

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
