"""OAuth2 for QuickBooks Online: the refresh-token grant against Intuit's token endpoint, with
the rotated refresh token written back to its file (mode 0600, atomic replace) before it is
used. Tokens are never logged."""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import orjson

from connectors.quickbooks.settings import TOKEN_URL
from connectors.quickbooks.transport import Transport
from hub.errors import ConfigError, TargetUnavailable


class Tokens:
    """OAuth2 tokens: refreshed when missing, expired or refused; the refresh token Intuit
    answers with (a new one when it rotates) is saved to ``refresh_file`` before it is used."""

    def __init__(
        self,
        transport: Transport,
        client_id: str,
        client_secret: str,
        refresh_file: Path,
        token_url: str = TOKEN_URL,
    ) -> None:
        self._transport = transport
        self._client = (client_id, client_secret)
        self._file = refresh_file
        self._url = token_url
        self._access: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Tokens(file={self._file})"  # never the tokens themselves

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
            refresh = self._file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"QuickBooks refresh token file {self._file}: {exc.strerror}"
            ) from exc
        form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh}).encode()
        basic = "Basic " + base64.b64encode(":".join(self._client).encode()).decode()
        headers = {
            "Authorization": basic,
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = await self._transport.request("POST", self._url, headers, form)
        if response.status >= 500 or response.status == 429:
            raise TargetUnavailable(f"QuickBooks token refresh answered {response.status}")
        if response.status != 200:
            raise ConfigError(
                f"Intuit refused the refresh token (HTTP {response.status}{_reason(response.body)})"
            )
        data = orjson.loads(response.body)
        rotated = str(data["refresh_token"])
        if rotated != refresh:
            _save(self._file, rotated)
        self._access = str(data["access_token"])
        self._expires = time.monotonic() + max(0, int(data.get("expires_in", 3600)) - 60)


def _reason(body: bytes) -> str:
    """``: <error>`` from an OAuth2 error answer (``invalid_grant``, ``invalid_client``: codes,
    never secrets), else nothing."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return f": {error}" if isinstance(error, str) and error.replace("_", "").isalpha() else ""


def _save(path: Path, secret: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
