"""The Xero target (a first slice): every document is a Xero ManualJournal.

Calls go through a small injectable ``Transport`` (aiohttp by default) to the Accounting API
(``https://api.xero.com/api.xro/2.0``): ``PUT ManualJournals`` to create, ``POST
ManualJournals/{id}`` to update or void (``Status = VOIDED``), ``GET ManualJournals`` to read
back. Each write carries the document's ``Idempotency-Key``; the narration ends with
``[KEY HASH]`` so a read-back finds ledgerhub's journals and what each was written from.

- Auth: OAuth2 refresh-token grant; Xero rotates the refresh token on every refresh, and the new
  one is written back to the secrets file (mode 0600, atomic replace). Tokens are never logged.
- Limits per tenant: at most 5 calls in flight and 60 in any 60 seconds (the caller waits).
- Errors: 429 → ``TargetUnavailable`` with ``Retry-After``; 5xx, timeouts and dropped
  connections → ``TargetUnavailable`` (the sender retries with backoff and jitter, and the same
  idempotency key makes a write Xero already applied come back as the same journal); 400 →
  ``TargetRejected`` with Xero's validation messages; 401 → one refresh, then the call again.
- Amounts: minor units → exact decimal JSON numbers (never a float).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Protocol

import aiohttp
import orjson

from hub.domain.money import to_major
from hub.errors import ConfigError, TargetRejected, TargetUnavailable
from hub.sync.target import HeldDocument, Receipt
from projections.accounting.documents import Document

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (a URL, not a secret)
_TAG = re.compile(r"\[(lh-[0-9a-f]+) ([0-9a-f]{64})\]$")
_NUMBER = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


@dataclass(frozen=True)
class Response:
    """What a transport got back."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Sends one HTTP request; raises ``TargetUnavailable`` on a timeout or a lost connection."""

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """The response to one request."""
        ...


class AiohttpTransport:
    """The real transport: an aiohttp session with a total timeout per call."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """One request; timeouts and connection errors become ``TargetUnavailable``."""
        try:
            async with self.session.request(
                method, url, headers=dict(headers), data=body, timeout=self.timeout
            ) as response:
                return Response(response.status, dict(response.headers), await response.read())
        except TimeoutError as exc:
            raise TargetUnavailable(f"{method} {url}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise TargetUnavailable(f"{method} {url}: {type(exc).__name__}") from exc


class Tokens:
    """OAuth2 tokens: refreshed when missing, expired or refused; the rotated refresh token is
    saved to ``refresh_file`` before it is used."""

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
            raise ConfigError(f"Xero refresh token file {self._file}: {exc.strerror}") from exc
        form = f"grant_type=refresh_token&refresh_token={refresh}".encode()
        basic = "Basic " + base64.b64encode(":".join(self._client).encode()).decode()
        headers = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
        response = await self._transport.request("POST", self._url, headers, form)
        if response.status >= 500 or response.status == 429:
            raise TargetUnavailable(f"Xero token refresh answered {response.status}")
        if response.status != 200:
            raise ConfigError(f"Xero refused the refresh token (HTTP {response.status})")
        data = orjson.loads(response.body)
        _save(self._file, str(data["refresh_token"]))
        self._access = str(data["access_token"])
        self._expires = time.monotonic() + max(0, int(data.get("expires_in", 1800)) - 60)


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


class Limits:
    """At most ``concurrent`` calls at once and ``per_minute`` in any sliding minute."""

    def __init__(self, concurrent: int = 5, per_minute: int = 60, window: float = 60) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._per_minute = per_minute
        self._window = window
        self._started: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            async with self._lock:
                now = time.monotonic()
                while self._started and now - self._started[0] >= self._window:
                    self._started.popleft()
                if len(self._started) >= self._per_minute:
                    await asyncio.sleep(self._window - (now - self._started[0]))
                    self._started.popleft()
                self._started.append(time.monotonic())
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._slots.release()


def _body(value: Any) -> bytes:
    """JSON with each ``Decimal`` written as an exact number (orjson knows no Decimal)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"\x00dec:{obj}"
        raise TypeError(type(obj).__name__)

    return _NUMBER.sub(r"\1", orjson.dumps(value, default=default).decode()).encode()


class XeroTarget:
    """One Xero organisation (``xero_tenant_id``) as the target of one ledgerhub tenant."""

    name: ClassVar[str] = "xero"
    supports_update: ClassVar[bool] = True

    def __init__(
        self,
        transport: Transport,
        tokens: Tokens,
        xero_tenant_id: str,
        *,
        api: str = API,
        limits: Limits | None = None,
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.xero_tenant_id = xero_tenant_id
        self.api = api.rstrip("/")
        self.limits = limits or Limits()

    async def create(self, document: Document) -> Receipt:
        """``PUT ManualJournals`` under the document's idempotency key."""
        body = {"ManualJournals": [_journal(document)]}
        return await self._write("PUT", "/ManualJournals", body, document.idempotency_key)

    async def update(self, target_id: str, document: Document) -> Receipt:
        """``POST ManualJournals/{id}`` with the new lines."""
        journal = {**_journal(document), "ManualJournalID": target_id}
        key = f"{document.idempotency_key}-{document.content_hash[:12]}"
        return await self._write(
            "POST", f"/ManualJournals/{target_id}", {"ManualJournals": [journal]}, key
        )

    async def void(self, target_id: str) -> Receipt:
        """``POST ManualJournals/{id}`` with ``Status = VOIDED``."""
        voided = {
            "ManualJournalID": target_id,
            "Status": "VOIDED",
            "Narration": "voided by ledgerhub",
        }
        body = {"ManualJournals": [voided]}
        return await self._write("POST", f"/ManualJournals/{target_id}", body, f"void-{target_id}")

    async def held(self) -> list[HeldDocument]:
        """ledgerhub's posted journals, found by the tag at the end of their narration."""
        response = await self._call("GET", "/ManualJournals", None, None)
        found = []
        for journal in orjson.loads(response.body).get("ManualJournals", []):
            tag = _TAG.search(journal.get("Narration", ""))
            if tag and journal.get("Status") == "POSTED":
                found.append(HeldDocument(tag[1], journal["ManualJournalID"], tag[2]))
        return found

    async def _write(self, method: str, path: str, body: Any, key: str) -> Receipt:
        response = await self._call(method, path, _body(body), key)
        journal = orjson.loads(response.body)["ManualJournals"][0]
        request_id = response.headers.get("Xero-Correlation-Id") or f"xero-{key}"
        return Receipt(str(journal["ManualJournalID"]), request_id)

    async def _call(self, method: str, path: str, body: bytes | None, key: str | None) -> Response:
        refused: str | None = None
        for _ in range(2):
            token = await self.tokens.access(refused=refused)
            headers = {
                "Authorization": f"Bearer {token}",
                "xero-tenant-id": self.xero_tenant_id,
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
            if key is not None:
                headers["Idempotency-Key"] = key
            async with self.limits:
                response = await self.transport.request(method, self.api + path, headers, body)
            if response.status != 401:
                return _checked(method, path, response)
            refused = token
        raise TargetUnavailable(f"{method} {path}: Xero refused a fresh access token")


def _checked(method: str, path: str, response: Response) -> Response:
    if response.status == 200:
        return response
    where = f"{method} {path}: HTTP {response.status}"
    if response.status == 429:
        retry = response.headers.get("Retry-After", "")
        wait = float(retry) if retry.replace(".", "", 1).isdigit() else None
        raise TargetUnavailable(f"{where} (rate limited)", retry_after=wait)
    if response.status >= 500:
        raise TargetUnavailable(where)
    raise TargetRejected(f"{where}: {_message(response.body)}")


def _message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace")
    messages = [
        error.get("Message", "")
        for element in data.get("Elements", [])
        for error in element.get("ValidationErrors", [])
    ]
    return "; ".join(m for m in messages if m) or str(data.get("Message", "refused"))


def _journal(document: Document) -> dict[str, Any]:
    lines = [
        {"LineAmount": to_major(amount, currency), "AccountCode": code,
         "Description": document.description[:400]}
        for code, currency, amount in document.postings
    ]  # fmt: skip
    narration = f"{document.description[:300]} [{document.idempotency_key} {document.content_hash}]"
    return {
        "Narration": narration,
        "Date": document.business_date.isoformat(),
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": lines,
    }
