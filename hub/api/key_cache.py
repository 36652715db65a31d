"""Key lookups cached for a few seconds, dropped at once when any process revokes a key.

Every request needs its key looked up; caching the lookup saves a database round trip per
request. A revocation (``ledgerhub keys revoke``, from any process) notifies the serving
processes, which drop the whole cache; should that notice be lost with the connection, the
time-to-live (``LEDGERHUB_KEY_CACHE_SECONDS``, default 5; 0 disables) bounds the delay.
Expiry is judged on every request from the cached ``expires_at``.
"""

from __future__ import annotations

import time

from hub.domain.keys import ApiKey
from hub.store.keys import KeyStore

_MAX_ENTRIES = 10_000


class KeyCache:
    """``find(digest)`` through a short-lived cache in front of ``KeyStore``."""

    def __init__(self, keys: KeyStore, ttl: float) -> None:
        self._keys = keys
        self._ttl = ttl
        self._entries: dict[bytes, tuple[float, ApiKey]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every cached lookup (a key was revoked somewhere)."""
        self._entries.clear()

    async def find(self, digest: bytes) -> ApiKey | None:
        """The key with this hash (or None), from the cache while it is fresh."""
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        key = await self._keys.find(digest)
        if key is not None and self._ttl > 0:  # unknown keys are not cached: they may appear
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (now, key)
        return key
