"""The puller a connector puts in its ``puller`` slot: read a spoke's API for what happened,
like a Singer tap or an Airbyte source, to backfill history and to catch what webhooks missed.

A puller declares its ``streams`` (name, primary key, cursor field, like a Singer stream's
``key_properties`` and ``replication_key``) and ``pull`` yields ``Page``s: the events one page
of the API gave, and the stream's cursor *after* that page. The hub (``hub.usecases.pull``)
appends each page's events and stores its cursor in one transaction
(``hub.store.pulls``), so a pull that dies anywhere resumes from the last committed page:
fetching is at least once, and the log's idempotency key (tenant, source, external id) makes it
exactly once in the log.

External ids: a pulled object is appended with the connector's usual event type (the one its
webhook would carry, so the same mapper maps it) and an external id that names *the change*:
the object's id for an object that never changes (a Stripe balance transaction: the id its
hand-pushed event already uses), else ``{id}:{state}`` (``po_123:paid``), so pulling the same
state twice is a duplicate and a later state is a new event. A webhook of the same change has
the provider's event id instead, so both may be in the log; they never *book* twice because
facts are keyed by the object (``charge:ch_…``, ``line:…``) and projections keep one entry per
fact key (the later event wins). Each connector's README table lists its ids.

HTTP goes through a ``Transport`` (``PullContext.transport``), aiohttp by default, so tests
and fault injection can put anything in between.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Protocol

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from hub.domain.events import NewEvent
from hub.errors import ConfigError, FatalError, RetriableError


@dataclass(frozen=True)
class PulledStream:
    """One stream a puller reads: what its objects are keyed by and what its cursor follows."""

    name: str
    """The stream's name (``charges``): its cursor is stored per (connection, name)."""
    primary_key: tuple[str, ...]
    """The object's identity within the stream (``("id",)``)."""
    cursor_field: str
    """What the stream's cursor follows (``created``, ``updated_at``, Plaid's ``cursor``)."""
    event_types: tuple[str, ...] = ()
    """The event types this stream's objects are appended as."""
    parent: str | None = None
    """For a child stream (a payout's balance transactions): the stream whose cursor it shares."""


@dataclass(frozen=True)
class Page:
    """One page of a stream: its events, and the stream's cursor once they are in the log."""

    stream: str
    events: list[NewEvent]
    cursor: dict[str, Any]
    """The stream's state after this page, stored with the events in one transaction."""
    seen: int = 0
    """Objects of this stream read so far in this pull (for progress)."""
    total: int | None = None
    """Objects this stream's pull is expected to read, when the API says (for progress)."""


@dataclass(frozen=True)
class Response:
    """What a transport got back."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class Transport(Protocol):
    """Sends one HTTP request; raises ``SourceUnavailable`` on a timeout or a lost connection."""

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """The response to one request."""
        ...


class SourceUnavailable(RetriableError):
    """The spoke's API did not answer usefully (timeout, 5xx, 429): try again later.

    ``retry_after`` is the delay it asked for, in seconds, when it named one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceRejected(FatalError):
    """The spoke's API refused the request (a bad key, a missing permission, a bad parameter):
    retrying the same request will not help. The message is the API's, never the credential."""


class AiohttpTransport:
    """The real transport: an aiohttp session with a total timeout per call."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float = 60) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """One request; timeouts and connection errors become ``SourceUnavailable``."""
        where = f"{method} {url.split('?', 1)[0]}"
        try:
            async with self.session.request(
                method, url, headers=dict(headers), data=body, timeout=self.timeout
            ) as response:
                return Response(response.status, dict(response.headers), await response.read())
        except TimeoutError as exc:
            raise SourceUnavailable(f"{where}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise SourceUnavailable(f"{where}: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed call (``SourceUnavailable``) is retried within a pull: ``attempts`` in all,
    waiting an exponential, jittered ``initial`` … ``maximum`` seconds, and at least what the
    API asked for (``retry_after``), capped at ``maximum``."""

    attempts: int = 8
    initial: float = 0.5
    maximum: float = 30.0


@dataclass
class CallStats:
    """What a pull asked of the API: calls made, and those that failed (each retried or not)."""

    calls: int = 0
    errors: int = 0


@dataclass
class PullContext:
    """What a puller gets for one pull of one connection."""

    tenant: str
    source: str
    """The connection's id: the events' ``source``."""
    credentials: Mapping[str, bytes]
    """The connection's resolved secrets by setting name (``api_key``; Plaid's ``client_id``,
    ``secret``, ``access_token``). Never log them or put them in an event."""
    api_url: str | None
    """The API's base URL when the connection overrides it (a local fake), else None."""
    state: Mapping[str, dict[str, Any]]
    """Each stream's stored cursor (absent: never pulled)."""
    transport: Transport
    since: date | None = None
    """Where a stream without a cursor starts: ``--since``, else the schedule's ``since``
    (None: as far back as the API goes)."""
    restart: bool = False
    """True when ``--since`` was given: every stream starts at ``since``, whatever its cursor."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The connector's own settings of the connection (Plaid's ``accounts``)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stats: CallStats = field(default_factory=CallStats)
    zone: Any = None
    """The tenant's time zone (a ``ZoneInfo``), for dates without a time."""
    page_size: int = 100
    """Objects to ask for per call where the API lets the caller choose (Stripe, Plaid)."""
    now: datetime | None = None
    """The pull's notion of now (None: the clock)."""

    def credential(self, name: str) -> str:
        """The credential ``name`` as text; ``ConfigError`` when the connection has none."""
        value = self.credentials.get(name)
        if not value:
            raise ConfigError(f"connection {self.source} needs {name} (env:NAME or file:PATH)")
        return value.decode()


class Puller(ABC):
    """A spoke's API reader: subclass, declare ``streams``, implement ``pull``."""

    streams: ClassVar[tuple[PulledStream, ...]] = ()
    credentials: ClassVar[tuple[str, ...]] = ("api_key",)
    """The connection settings (secrets) a pull needs."""
    default_url: ClassVar[str] = ""
    """The API's production base URL (``api_url`` overrides it)."""

    @abstractmethod
    def pull(self, ctx: PullContext) -> AsyncIterator[Page]:
        """The pages of every stream, each with the stream's cursor after it.

        Read ``ctx.state`` for where each stream stopped; make every call through
        ``ctx.transport`` (counting it in ``ctx.stats``). A page's events must be safe to
        append again (a re-fetched page's events are duplicates). Raise ``SourceRejected`` for
        a refusal and ``SourceUnavailable`` once retries are spent.
        """

    async def health_check(self, ctx: PullContext) -> str | None:
        """One cheap authenticated call through ``ctx.transport``: a few words on what answered;
        ``SourceRejected`` or ``SourceUnavailable`` when the connection is not healthy. None
        (this default): the puller declares no check (``hub.spi.health``)."""
        return None

    def base_url(self, ctx: PullContext) -> str:
        """``ctx.api_url`` or ``default_url``, without a trailing slash."""
        return (ctx.api_url or self.default_url).rstrip("/")


async def call(
    ctx: PullContext,
    send: Callable[[], Awaitable[Response]],
    judge: Callable[[Response], Response],
) -> Response:
    """``send`` one request through ``ctx``'s retry policy (tenacity): ``judge`` returns the
    response when it is usable and raises ``SourceUnavailable`` (retried, waiting at least its
    ``retry_after``) or ``SourceRejected`` (not retried). Every attempt counts in ``ctx.stats``;
    each failed one also as an error. After the last attempt the error is raised as itself."""

    def wait(state: RetryCallState) -> float:
        backoff = wait_random_exponential(multiplier=ctx.retry.initial, max=ctx.retry.maximum)
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.retry_after if isinstance(exc, SourceUnavailable) else None
        return min(ctx.retry.maximum, max(backoff(state), asked or 0.0))

    async def attempt() -> Response:
        ctx.stats.calls += 1
        try:
            return judge(await send())
        except (SourceUnavailable, SourceRejected):
            ctx.stats.errors += 1
            raise

    retrying = AsyncRetrying(
        stop=stop_after_attempt(ctx.retry.attempts),
        wait=wait,
        retry=retry_if_exception_type(SourceUnavailable),
        reraise=True,
    )
    response: Response = await retrying(attempt)
    return response
