"""OAuth2 for Xero: the refresh-token grant, with the rotated refresh token written back to its
file (mode 0600, atomic replace) before it is used, sealed under ``LEDGERHUB_SECRET_KEY`` when
one is configured (``hub.spi.sealed``). Tokens are never logged."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from urllib.parse import urlencode

import orjson

from connectors.xero.target.settings import TOKEN_URL
from connectors.xero.target.transport import Transport
from hub.errors import ConfigError, TargetUnavailable
from hub.spi.sealed import SealedFile


class Tokens:
    """OAuth2 tokens: refreshed when missing, expired or refused; the rotated refresh token is
    saved to ``refresh_file`` before it is used. ``refresh_file`` is a ``SealedFile``
    (``TargetEnvironment.sealed_file``) or a path, then sealed under the key
    ``LEDGERHUB_SECRET_KEY`` gives (plain when unset)."""

    def __init__(
        self,
        transport: Transport,
        client_id: str,
        client_secret: str,
        refresh_file: Path | SealedFile,
        token_url: str = TOKEN_URL,
    ) -> None:
        self._transport = transport
        self._client = (client_id, client_secret)
        self._file = (
            refresh_file
            if isinstance(refresh_file, SealedFile)
            else SealedFile.from_env(refresh_file)
        )
        self._url = token_url
        self._access: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Tokens(file={self._file.path})"  # never the tokens themselves

    async def access(self, *, refused: str | None = None) -> str:
        """A valid access token (a new one if ``refused`` is the one in use)."""
        async with self._lock:
            stale = self._access is None or time.monotonic() >= self._expires
            if stale or (refused is not None and refused == self._access):
                await self._refresh()
            assert self._access is not None
            return self._access

    async def _refresh(self) -> None:
        try:
            refresh = self._file.read()
        except ConfigError as exc:
            raise ConfigError(f"Xero refresh token file {exc}") from exc
        form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh}).encode()
        basic = "Basic " + base64.b64encode(":".join(self._client).encode()).decode()
        headers = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
        response = await self._transport.request("POST", self._url, headers, form)
        if response.status >= 500 or response.status == 429:
            raise TargetUnavailable(f"Xero token refresh answered {response.status}")
        if response.status != 200:
            raise ConfigError(f"Xero refused the refresh token (HTTP {response.status})")
        data = orjson.loads(response.body)
        self._file.write(str(data["refresh_token"]))
        self._access = str(data["access_token"])
        self._expires = time.monotonic() + max(0, int(data.get("expires_in", 1800)) - 60)
