"""The ``Projection`` base class that every read model and sync in ``projections/`` subclasses."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel

from hub.domain.events import RecordedEvent
from hub.errors import ConfigError
from hub.store.pool import Connection as Connection  # the type of ctx.conn, for plugins
from hub.store.projections import MAX_PARTITIONS, generation_tables, render_views, view_name
from hub.store.projections import View as View  # an analyst view, for plugins

if TYPE_CHECKING:
    from hub.api.routing import ApiRoute
    from hub.config import Config

Mode = Literal["live", "replay", "rebuild", "retry"]
"""Why the runtime is calling a handler: new events, an operator's replay or rebuild, or the
retry of a parked event."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TABLE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")


@dataclass(frozen=True)
class Context:
    """What a handler gets with each batch.

    - ``conn``: a connection inside the batch's transaction. Write your read model with it; the
      runtime commits those writes together with the new checkpoint, or rolls all of it back.
    - ``tables``: your logical table name -> the quoted, schema-qualified table to write for this
      call (a rebuild writes fresh tables, so never hard-code a table name).
    - ``mode``: ``live``, ``replay``, ``rebuild`` or ``retry``.
    - ``sending``: whether ``send`` will be called for this batch.
    """

    conn: Connection
    tables: Mapping[str, str]
    mode: Mode
    sending: bool


class Projection:
    """A named consumer of the event log with its own checkpoint and read-model tables.

    Subclass it, set the class attributes and implement ``handle``; register the class under the
    ``ledgerhub.projections`` entry-point group (or name it in ``LEDGERHUB_PROJECTIONS``).

    Class attributes:

    - ``name``: unique, ``[a-z][a-z0-9_]*`` (at most 40 characters).
    - ``version``: bump it when ``handle`` or ``tables`` change meaning; a worker that finds a
      stored generation of another version rebuilds the projection (blue/green). Until the
      swap, queries read the old version's tables as they were (the new code never writes them).
    - ``event_types``: the event types it wants (``None`` = all). Others never reach ``handle``,
      but the checkpoint moves past them.
    - ``tables``: logical name -> the column list of a ``CREATE TABLE`` (constraints included).
      The runtime creates them per generation as
      ``ledgerhub_projections."<name>__<table>__g<N>"`` and keeps a view
      ``ledgerhub_projections."<name>__<table>"`` on the active generation: queries read the
      view (see ``view``), handlers write ``ctx.tables[...]``.
    - ``side_effects``: set to True if ``send`` calls outside systems.
    - ``views``: analyst view name -> ``View``: a SELECT over this projection's tables, served
      to analysts as ``ledgerhub_views.<name>`` (role ``ledgerhub_analyst``). The runtime
      applies them with each generation and swaps them with it, so analysts read the old
      generation until a rebuild is complete (see ``View``).
    - ``partitions``: how many partitions (K, 1 to 256) it runs as unless the operator says
      otherwise (``LEDGERHUB_PARTITIONS``). Partition p applies only the events of the tenants
      that hash into it (``hub.store.projections``, "Partitions"), each with its own lease, so
      K workers can share the work; a tenant's events still arrive in position order. The K
      partitions' batches run concurrently against the same tables: keep each tenant's rows
      apart (key them by tenant) and never let an event's effect depend on another tenant's
      events. Leave it at 1 for a projection whose rows span tenants.

    HTTP routes: override the class method ``routes`` to return the projection's
    ``hub.spi.http.ApiRoute`` list; the API mounts the routes of every installed projection.

    The SQL boundary: only ``hub/store`` speaks SQL to the event log and to the runtime's own
    tables (checkpoints, leases, parked events, jobs). A projection speaks SQL to its *own*
    tables only, through ``ctx.conn``, inside the transaction the runtime gives it.

    Contract of ``handle``:

    - It is called with events in position order, in batches, inside one transaction whose
      commit also stores the new checkpoint: in live mode each event is applied exactly once.
    - It MUST be idempotent: applying an event it has already applied must leave the read model
      as it was. Replay re-applies a range on purpose, and a retried parked event arrives after
      later events, so do not assume positions only grow (key rows by position or by the
      entity's own id, and upsert).
    - Raise ``RetriableError`` for a transient failure (retried with backoff, then parked);
      any other exception parks the offending event (``SkippableError`` says so on purpose) and
      the projection goes on with the next one. Do not catch database errors to hide them.
    - Keep it short: a transaction held longer than the lease's time to live is ended by the
      server, and the batch is retried.

    Side effects: ``send`` is where a projection may call outside systems. The runtime calls it
    after ``handle`` in the same transaction in live mode and for a parked retry, and never in
    replay or rebuild unless the operator passed ``--send``. ``handle`` itself must never call
    outside systems. Sends are at least once (a crash before commit repeats them): key each call
    with an idempotency key derived from the events.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    event_types: ClassVar[frozenset[str] | None] = None
    tables: ClassVar[Mapping[str, str]] = {}
    side_effects: ClassVar[bool] = False
    views: ClassVar[Mapping[str, View]] = {}
    """Analyst views, created in declaration order (a view may read those before it)."""
    partitions: ClassVar[int] = 1
    """The K it runs as by default (``LEDGERHUB_PARTITIONS`` overrides it)."""
    config_section: ClassVar[str | None] = None
    """The name of this projection's per-tenant table in the config file
    (``[tenants.T.<config_section>]``), if it has one."""
    config_model: ClassVar[type[BaseModel] | None] = None
    """The pydantic model of that table: validated when the config file is loaded, so a
    mistake is reported at ``FILE:LINE`` before anything runs."""

    config: Config
    """The configuration, set by ``configure`` before the first batch."""

    def configure(self, config: Config) -> None:
        """Take ``config``: the runtime calls this before the first batch, and again with the
        file read anew when a rebuild starts (the point of rebuilding after changing a mapping
        or a setting). Override to derive what you need; keep the call cheap and pure."""
        self.config = config

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        """Apply ``events`` (position order) to the read model through ``ctx``."""
        raise NotImplementedError

    async def send(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        """Call outside systems for ``events``; only for projections with ``side_effects``."""

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        """Optional: work on ``events`` that needs no database, done ahead of ``handle``.

        While a runner is behind the head (a rebuild, a catch-up) and no other runner of its
        process is, it reads the next batch while the current one is being applied, and calls
        this on it in slices in between: Python's work on the next batch then runs while the
        database works on this one. Only
        for pure work whose results ``handle`` finds again (a memo such as
        ``BooksConfig.remember``); it may run on a configuration ``handle`` will not use, or on
        events ``handle`` never sees, and what it raises is ignored."""

    @classmethod
    def routes(cls) -> Sequence[ApiRoute]:
        """This projection's HTTP routes (none by default), mounted by the API beside its own.

        Each must need a key (``auth=requires(Access.READ)``, …); build them with
        ``hub.spi.http``. A method rather than a class attribute so that the route module (and
        aiohttp) is imported only by a process that serves the API: import it in the method.
        """
        return ()

    @classmethod
    def view(cls, table: str) -> str:
        """The quoted name queries use for ``table``: a view on the active generation."""
        if table not in cls.tables:
            raise ConfigError(f"projection {cls.name!r} has no table {table!r}")
        return view_name(cls.name, table)

    @classmethod
    def check(cls) -> None:
        """Raise ``ConfigError`` if the class attributes are not a valid definition."""
        name = getattr(cls, "name", None)
        where = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: name must match [a-z][a-z0-9_]* (40 characters at most)")
        if not isinstance(cls.version, int) or cls.version < 1:
            raise ConfigError(f"{where}: version must be a positive integer")
        if not isinstance(cls.partitions, int) or not 1 <= cls.partitions <= MAX_PARTITIONS:
            raise ConfigError(f"{where}: partitions must be an integer from 1 to {MAX_PARTITIONS}")
        for table in cls.tables:
            if not _TABLE.match(table):
                raise ConfigError(
                    f"{where}: table {table!r} must match [a-z][a-z0-9_]* (16 characters at most)"
                )
        render_views(name, cls.views, generation_tables(name, cls.tables, 1))
        if (cls.config_section is None) != (cls.config_model is None):
            raise ConfigError(f"{where}: config_section and config_model are set together")
        if cls.handle is Projection.handle:
            raise ConfigError(f"{where}: handle() is not implemented")
        if cls.side_effects != (cls.send is not Projection.send):
            raise ConfigError(
                f"{where}: a projection that calls outside systems implements send() and sets "
                "side_effects = True; one without either"
            )


def wants(projection: type[Projection]) -> list[str] | None:
    """The event types to read for ``projection`` (None = all), sorted for stable queries."""
    return None if projection.event_types is None else sorted(projection.event_types)
