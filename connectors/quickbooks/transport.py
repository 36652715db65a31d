"""HTTP to QuickBooks Online: the injectable ``Transport`` (aiohttp by default), exact-decimal
JSON bodies, and QuickBooks' answers turned into the errors the sender acts on.

- 200 → the response;
- 429 (``ThrottleExceeded``) → ``TargetUnavailable``, with ``Retry-After`` when one is given;
- 5xx, timeouts, dropped connections → ``TargetUnavailable``;
- any other 4xx → ``Fault`` (a ``TargetRejected``) carrying QuickBooks' error codes and its
  ``Fault.Error[].Message``/``Detail`` text; the client handles the codes it expects (5010 stale
  object, 610 object not found) and lets the others park the document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import orjson

from hub.errors import TargetRejected, TargetUnavailable

_NUMBER = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')
STALE_OBJECT = "5010"
"""QuickBooks' code for a write with an old ``SyncToken`` ("Stale Object Error")."""
NOT_FOUND = "610"
"""QuickBooks' code for an object that does not exist (or was deleted)."""


@dataclass(frozen=True)
class Response:
    """What a transport got back."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def tid(self) -> str:
        """Intuit's id of this call (the ``intuit_tid`` header), or ``""``."""
        for name, value in self.headers.items():
            if name.lower() == "intuit_tid":
                return value
        return ""


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
        """One request; timeouts and connection errors become ``TargetUnavailable`` (the URL
        is named without its query)."""
        where = f"{method} {url.split('?', 1)[0]}"
        try:
            async with self.session.request(
                method, url, headers=dict(headers), data=body, timeout=self.timeout
            ) as response:
                return Response(response.status, dict(response.headers), await response.read())
        except TimeoutError as exc:
            raise TargetUnavailable(f"{where}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise TargetUnavailable(f"{where}: {type(exc).__name__}") from exc


class Fault(TargetRejected):
    """QuickBooks refused a call (a 4xx ``Fault``): its codes and its message."""

    def __init__(self, message: str, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.codes = codes


def body(value: Any) -> bytes:
    """JSON with each ``Decimal`` written as an exact number (orjson knows no Decimal)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"\x00dec:{obj}"
        raise TypeError(type(obj).__name__)

    return _NUMBER.sub(r"\1", orjson.dumps(value, default=default).decode()).encode()


def checked(method: str, path: str, response: Response) -> Response:
    """``response`` if it is a 200, else the error the sender acts on."""
    if response.status == 200:
        return response
    where = f"{method} {path}: HTTP {response.status}"
    if response.tid:
        where += f" (intuit_tid {response.tid})"
    if response.status == 429:
        retry = response.headers.get("Retry-After", "")
        wait = float(retry) if retry.replace(".", "", 1).isdigit() else None
        raise TargetUnavailable(f"{where}: throttled", retry_after=wait)
    if response.status >= 500:
        raise TargetUnavailable(where)
    text, codes = fault(response.body)
    raise Fault(f"{where}: {text}", codes)


def fault(raw: bytes) -> tuple[str, tuple[str, ...]]:
    """QuickBooks' messages in a ``Fault`` body, joined, and its error codes (never the
    request itself)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode(errors="replace") or "refused", ()
    errors = (data.get("Fault") or {}).get("Error") or [] if isinstance(data, dict) else []
    texts, codes = [], []
    for error in errors:
        if not isinstance(error, dict):
            continue
        message, detail = str(error.get("Message") or ""), str(error.get("Detail") or "")
        texts.append(f"{message}: {detail}" if detail and detail != message else message)
        codes.append(str(error.get("code") or ""))
    return "; ".join(t for t in texts if t) or "refused", tuple(codes)
