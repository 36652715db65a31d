"""What the handlers share: the store, the keys, the config, the limits."""

from __future__ import annotations

import os
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from hub.api.key_cache import KeyCache
from hub.api.routing import Auth
from hub.config import Config
from hub.domain.keys import ApiKey
from hub.errors import ConfigError
from hub.store.events import EventStore
from hub.store.keys import KeyStore

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class ApiLimits:
    """Request limits. ``LEDGERHUB_MAX_BODY_BYTES`` sets the body limit (default 5 MiB)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls) -> ApiLimits:
        """Limits from the environment."""
        text = os.environ.get("LEDGERHUB_MAX_BODY_BYTES")
        if not text:
            return cls()
        if not text.isdigit() or int(text) < 1024:
            raise ConfigError(
                f"LEDGERHUB_MAX_BODY_BYTES must be a number of bytes ≥ 1024, got {text!r}"
            )
        return cls(max_body_bytes=int(text))


@dataclass(frozen=True)
class HubContext:
    """Everything a request handler may use."""

    dsn: str
    store: EventStore
    keys: KeyStore
    config: Config
    limits: ApiLimits = ApiLimits()
    key_cache: KeyCache | None = None
    """Cached key lookups (None: every request asks the database)."""

    async def find_key(self, digest: bytes) -> ApiKey | None:
        """The key with this hash, through the cache when there is one."""
        if self.key_cache is not None:
            return await self.key_cache.find(digest)
        return await self.keys.find(digest)


CONTEXT = web.AppKey("ledgerhub_context", HubContext)
ROUTE_AUTH = web.AppKey("ledgerhub_route_auth", dict[AbstractRoute, Auth])
REQUEST_ID = web.RequestKey("ledgerhub_request_id", str)
API_KEY = web.RequestKey("ledgerhub_api_key", ApiKey)


def context(request: web.Request) -> HubContext:
    """The hub context of the app serving ``request``."""
    return request.app[CONTEXT]
