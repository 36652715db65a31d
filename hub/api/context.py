"""What the handlers share: the store, the keys, the config, the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute
from pydantic import Field

from hub.api.key_cache import KeyCache
from hub.api.routing import Auth
from hub.config import Config
from hub.config.environment import EnvironmentSettings
from hub.domain.keys import ApiKey
from hub.store.events import EventStore
from hub.store.keys import KeyStore

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024


class ApiLimits(EnvironmentSettings):
    """Request limits: ``LEDGERHUB_MAX_BODY_BYTES`` (default 5 MiB, at least 1024; larger
    bodies → 413) and ``LEDGERHUB_KEY_CACHE_SECONDS`` (0..300, default 5: how long a key lookup
    is cached; a revocation clears it at once)."""

    max_body_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_BODY_BYTES
    key_cache_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0


@dataclass(frozen=True)
class HubContext:
    """Everything a request handler may use."""

    dsn: str
    store: EventStore
    keys: KeyStore
    config: Config
    limits: ApiLimits = field(default_factory=ApiLimits)
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
