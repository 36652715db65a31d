"""HTTP to Xero: the injectable ``Transport`` (aiohttp by default), exact-decimal JSON bodies,
and Xero's answers turned into ``TargetUnavailable`` (429 with ``Retry-After``, 5xx, timeouts,
dropped connections) or ``TargetRejected`` (4xx, with Xero's validation messages)."""

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
    if response.status == 429:
        retry = response.headers.get("Retry-After", "")
        wait = float(retry) if retry.replace(".", "", 1).isdigit() else None
        raise TargetUnavailable(f"{where} (rate limited)", retry_after=wait)
    if response.status >= 500:
        raise TargetUnavailable(where)
    raise TargetRejected(f"{where}: {message(response.body)}")


def message(body: bytes) -> str:
    """Xero's validation messages in an error body, joined (never the request itself)."""
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
