"""Key lookups cached for a few seconds, dropped at once when any process revokes a key;
per-key rate limits (``RateLimiter``).

Every request needs its key looked up; caching the lookup saves a database round trip per
request. A revocation (``ledgerhub keys revoke``, from any process) notifies the serving
processes, which drop the whole cache; should that notice be lost with the connection, the
time-to-live (``LEDGERHUB_KEY_CACHE_SECONDS``, default 5; 0 disables) bounds the delay.
Expiry is judged on every request from the cached ``expires_at``; a rotation notifies the
same way, so the old key's shortened ``expires_at`` is seen at once.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping

from hub.domain.keys import ApiKey, Rate
from hub.errors import ConfigError, InvalidInput
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
        """Forget every cached lookup (a key was revoked or rotated somewhere)."""
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


class RateLimiter:
    """Per-key token buckets, in this process's memory.

    A key's bucket holds up to ``rate.count`` tokens and gains ``rate.per_second`` a second;
    each request takes one. The limit is the key's own ``rate``, else ``default`` (None: no
    limit). Each API process keeps its own buckets: N processes let a key make up to N times
    its rate in all.
    """

    def __init__(self, default: Rate | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self._clock = clock
        self._buckets: dict[uuid.UUID, tuple[Rate, float, float]] = {}

    def take(self, key: ApiKey) -> float | None:
        """Take a token for one request of ``key``: None if it may go ahead, else the seconds
        until a token is there again."""
        rate = key.rate or self.default
        if rate is None:
            return None
        now = self._clock()
        held = self._buckets.get(key.id)
        if held is None or held[0] != rate:  # new, or the key's limit changed
            tokens = float(rate.count)
        else:
            tokens = min(float(rate.count), held[1] + (now - held[2]) * rate.per_second)
        if tokens >= 1.0 - 1e-9:  # a whole token, give or take the float arithmetic
            self._buckets[key.id] = (rate, max(0.0, tokens - 1.0), now)
            return None
        if len(self._buckets) >= _MAX_ENTRIES:
            self._drop_full(now)
        self._buckets[key.id] = (rate, tokens, now)
        return (1.0 - tokens) / rate.per_second

    def _drop_full(self, now: float) -> None:
        """Forget buckets that have refilled (forgetting them changes nothing)."""
        for key_id, (rate, tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * rate.per_second >= rate.count:
                del self._buckets[key_id]


def rate_from_env(environ: Mapping[str, str] | None = None) -> Rate | None:
    """The default per-key rate limit, ``LEDGERHUB_RATE_LIMIT`` (``100/s``, ``600/m``);
    None when unset or empty; ``ConfigError`` naming the variable when it is not a rate."""
    text = (os.environ if environ is None else environ).get("LEDGERHUB_RATE_LIMIT", "").strip()
    if not text:
        return None
    try:
        return Rate.parse(text)
    except InvalidInput as exc:
        raise ConfigError(f"LEDGERHUB_RATE_LIMIT: {exc.detail}") from None
