"""Accounting targets: the ``TargetPlugin`` a target package registers (entry points
``ledgerhub.targets``), the ``Target`` it opens per tenant, and what a call returns.

A plugin declares its name (``target = "<name>"`` in a tenant's ``sync`` table), its settings
model (the other keys of that table, validated when the config file is loaded, so a mistake is
reported at ``FILE:LINE`` before anything runs) and ``open``, which builds the tenant's
``Target`` from those settings and the ``TargetEnvironment`` (the tenant's books, where files
live, secrets, secret files sealed at rest, the shared HTTP session)::

    [project.entry-points."ledgerhub.targets"]
    beancount = "connectors.beancount:BeancountPlugin"
    xero = "connectors.xero.target:XeroPlugin"

Field types for a settings model, each refused with a message the config error repeats after
the key's path (``tenants.T.sync.KEY: …``): ``Text`` (a non-empty string), ``SecretReference``
(``env:NAME`` or ``file:PATH``, never the secret itself), ``ServiceUrl`` (https, or http to
this machine only: ``safe_url``) and ``Seconds`` (a positive number).

A target stores documents (``hub.domain.documents.Document``) keyed by their
idempotency key. ``create`` with a key the target already holds returns what it holds (no second
copy): that is how a send repeated after a crash stays single. A target that cannot change a
document in place sets ``supports_update = False``; the sender then voids and re-creates it.

Errors: ``TargetUnavailable`` (retry later: timeout, 5xx, 429 with ``retry_after``) and
``TargetRejected`` (the document is refused: park it with the message).

Batching (optional). A target that can save work by writing many changes at once (a file
rewritten whole, say) also implements ``BatchingTarget``: ``batch()``, inside which calls may be
held back, and ``flush()``, which makes them durable. The sender opens one batch per sync run
(``batched``) and appends the outcomes of the calls to the log only after ``flush()`` returned,
so the log never records a document the target does not hold; a target without the two methods
(every call durable when it returns) needs nothing: ``batched`` then yields a no-op flush.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from hub.domain.documents import Document
from hub.domain.sealing import SecretKey
from hub.errors import ConfigError
from hub.spi.sealed import SealedFile, key_from_env

if TYPE_CHECKING:
    import aiohttp

    from hub.config.books import TenantBooks


@dataclass(frozen=True)
class Receipt:
    """A target's answer to one call."""

    target_id: str
    """The target's id for the document."""
    request_id: str
    """The id of the call (the target's, when it gives one), for the call log."""
    idempotency_key: str = ""
    """The idempotency key the document was stored under (empty: the document's own)."""


@dataclass(frozen=True)
class HeldDocument:
    """A document as the target holds it, read back (for shadow comparisons and tests)."""

    idempotency_key: str
    target_id: str
    content_hash: str


class Target(Protocol):
    """An accounting system documents are sent to (one instance per tenant)."""

    name: ClassVar[str]
    supports_update: ClassVar[bool]

    async def create(self, document: Document) -> Receipt:
        """Store ``document``; if its idempotency key is already held, return that one."""
        ...

    async def update(self, target_id: str, document: Document) -> Receipt:
        """Replace the document ``target_id`` with ``document`` (only if ``supports_update``)."""
        ...

    async def void(self, target_id: str) -> Receipt:
        """Void (remove from the books) the document ``target_id``; voiding twice is a no-op."""
        ...

    async def held(self) -> list[HeldDocument]:
        """Every live (not voided) document the target holds for this tenant."""
        ...


NOT_SENT = "not-sent"
"""The target id a target answers for a document kind it cannot hold (a statement balance,
``hub.domain.documents.BALANCE``, at Xero or QuickBooks, which have no balance assertion): the
call sends nothing and succeeds, the sender records the document as synced, ``held`` never
lists it, and a shadow comparison does not expect it there."""


@runtime_checkable
class BatchingTarget(Target, Protocol):
    """A target whose calls inside ``batch()`` may wait for ``flush()`` to be durable."""

    def batch(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A block in which calls may be held back until ``flush()`` (or the block's end).
        Leaving it with an error may drop what was not flushed: those calls were never
        confirmed, and the sender sends them again next run."""
        ...

    async def flush(self) -> None:
        """Make every call made so far durable (``TargetUnavailable`` if it cannot: then
        none of the unflushed calls counts as done)."""
        ...


async def _durable() -> None:
    """The flush of a target whose every call is durable when it returns: nothing to do."""


@contextlib.asynccontextmanager
async def batched(target: Target) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A batch on ``target`` for the block, yielding its ``flush``; for a target that does not
    batch (``BatchingTarget``), no batch and a flush that does nothing."""
    if not isinstance(target, BatchingTarget):
        yield _durable
        return
    async with target.batch():
        yield target.flush


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("text", "expected a non-empty string")
    return value


def _reference(value: str) -> str:
    if not value.startswith(("env:", "file:")):
        raise PydanticCustomError(
            "secret_reference",
            "write env:NAME or file:PATH (a secret is never kept in the config file)",
        )
    return value


def _url(value: str) -> str:
    if not safe_url(value):
        raise PydanticCustomError(
            "service_url",
            f"expected an https:// URL (http:// only to this machine), got {value!r}",
        )
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PydanticCustomError("seconds", "expected a positive number of seconds")
    return float(value)


Text = Annotated[str, BeforeValidator(_text)]
"""A non-empty string."""
SecretReference = Annotated[str, BeforeValidator(_text), AfterValidator(_reference)]
"""``env:NAME`` or ``file:PATH``; resolve it in ``open`` with ``TargetEnvironment.secret``."""
ServiceUrl = Annotated[str, BeforeValidator(_text), AfterValidator(_url)]
"""A URL tokens may travel to: https, or plain http to this machine (``safe_url``)."""
Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A positive number of seconds (a timeout)."""


class TargetSettings(BaseModel):
    """Base of a target's settings model: the keys of ``[tenants.NAME.sync]`` besides
    ``target`` and ``mode``. Unknown keys are refused; secrets stay ``env:``/``file:``
    references here and are resolved by ``open`` (through ``TargetEnvironment.secret``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class TargetEnvironment:
    """What ``TargetPlugin.open`` gets besides the settings: the tenant's books, where files
    live, the HTTP session API targets share, and the key secret files are sealed under."""

    books: TenantBooks
    """The tenant (``books.name``), its chart of accounts and time zone."""
    home: Path
    """``LEDGERHUB_HOME``: where a file target keeps files given by a relative path."""
    config_dir: Path | None
    """The config file's folder: ``file:`` secrets and token files are relative to it."""
    session: aiohttp.ClientSession | None
    secret_key: SecretKey | None = field(default_factory=key_from_env)
    """The key secret files are sealed under; None: kept plain, with one warning. The hub
    reads ``LEDGERHUB_SECRET_KEY`` once where it opens the tenants' targets
    (``hub.sync.tenants.open_targets``) and hands it in; the default reads it for an
    environment made elsewhere (a plugin's own tests)."""
    sealed_files: list[SealedFile] = field(default_factory=list, compare=False, repr=False)
    """Every file ``sealed_file`` handed out (what ``ledgerhub secrets rotate`` re-seals)."""
    check_sealed: bool = True
    """Whether ``sealed_file`` checks now that ``secret_key`` opens the file, sealing plain
    text at once (False only to list the files, as ``secrets rotate`` does, whatever key
    sealed them, touching none)."""

    @property
    def where(self) -> str:
        """How the tenant's sync table is named in error messages."""
        return f"tenants.{self.books.name}.sync"

    def secret(self, key: str, ref: str) -> str:
        """The value of the ``env:``/``file:`` reference ``ref`` given for ``key``;
        ``ConfigError`` naming the key when it cannot be read."""
        from hub.config import resolve_secret

        try:
            return resolve_secret(ref, base=self.config_dir).decode()
        except ConfigError as exc:
            raise ConfigError(f"{self.where}.{key}: {exc}") from exc

    def config_path(self, path: str) -> Path:
        """``path`` (``~`` expanded) relative to the config file's folder."""
        found = Path(path).expanduser()
        if self.config_dir is not None and not found.is_absolute():
            found = self.config_dir / found
        return found

    def sealed_file(self, path: Path) -> SealedFile:
        """The secret file ``path`` (a refresh token the target rewrites), sealed under
        ``secret_key``: plain text found there is sealed, every write is sealed (atomic, 0600).
        Unless ``check_sealed`` is False, that is done now (``SealedFile.check_and_seal``):
        plain text is sealed at once, and sealed data this key cannot open (no key configured,
        another key, damage) is a ``ConfigError`` now, so a wrong key stops the start, not a
        later call."""
        found = SealedFile(path, self.secret_key)
        if self.check_sealed:
            found.check_and_seal()
        self.sealed_files.append(found)
        return found

    def read_sealed(self, path: Path) -> str:
        """The text of the secret file ``path``, opened (and sealed in place if it was
        plain): ``SealedFile.read``."""
        return SealedFile(path, self.secret_key).read()

    def write_sealed(self, path: Path, text: str) -> None:
        """Replace the secret file ``path`` with ``text``, sealed: ``SealedFile.write``."""
        SealedFile(path, self.secret_key).write(text)

    def http(self) -> aiohttp.ClientSession:
        """The shared HTTP session (``ConfigError`` if the caller opened none)."""
        if self.session is None:
            raise ConfigError(f"{self.where}: this target needs an HTTP session")
        return self.session


class TargetPlugin(ABC):
    """An accounting system ledgerhub can send documents to: subclass, register the entry
    point under the target's ``name``."""

    name: ClassVar[str]
    """What a tenant writes as ``sync.target``."""
    settings: ClassVar[type[TargetSettings]] = TargetSettings
    """The model of the target's keys in the tenant's ``sync`` table."""

    def validate(self, raw: dict[str, Any]) -> TargetSettings:
        """The target's settings from the table's keys (``pydantic.ValidationError`` if wrong)."""
        return self.settings.model_validate(raw)

    @abstractmethod
    def open(self, settings: Any, env: TargetEnvironment) -> Target:
        """The tenant's target, built from ``settings`` (an instance of ``self.settings``);
        ``ConfigError`` when it cannot be (a secret missing, a token file gone)."""


def safe_url(url: str) -> bool:
    """https, or plain http to this machine only (a local test server): tokens travel there."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(host)
    return parts.scheme == "http" and host in ("127.0.0.1", "localhost", "::1")
