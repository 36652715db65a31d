"""The projection runtime's knobs, from the environment (short values make tests fast)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from hub.config.environment import EnvironmentSettings
from hub.spi.projection import Projection
from hub.store.projections import MAX_PARTITIONS


class RuntimeSettings(EnvironmentSettings):
    """How workers run projections (``LEDGERHUB_<FIELD>`` variables).

    - ``LEDGERHUB_LEASE_TTL`` (seconds, default 10, at least 0.3): a lease not renewed for this
      long may be taken over. Leases are renewed and free ones sought every third of it, so a
      dead worker's projections are taken over within ``4/3 * TTL`` (13.3 s by default).
    - ``LEDGERHUB_POLL_INTERVAL`` (seconds, default 5): how often an idle projection looks for
      new events when no ``NOTIFY`` woke it.
    - ``LEDGERHUB_NOTIFY`` (``1``/``0``, default 1): listen for ``NOTIFY`` at all.
    - ``LEDGERHUB_BATCH_SIZE`` (default 1000): events per transaction.
    - ``LEDGERHUB_RETRY_ATTEMPTS`` (default 5) and ``LEDGERHUB_RETRY_WAIT`` (seconds, default 0.5,
      doubling up to 30): a handler's ``RetriableError`` is retried this often before the event
      is parked.
    - ``LEDGERHUB_BACKOFF_MAX`` (seconds, default 30): the longest wait after a database error.
    - ``LEDGERHUB_PARTITIONS`` (e.g. ``ledger=4,accounting=2``): how many partitions (K, 1 to
      256) each named projection runs as, in place of the K its class declares
      (``Projection.partitions``, default 1). Give every worker the same value, the workers
      inside ``ledgerhub serve`` included (workers that disagree leave the projection alone
      until they agree). A projection whose active generation has another K is rebuilt with
      this one (see ``hub.runtime.runner``).
    """

    lease_ttl: Annotated[float, Field(ge=0.3)] = 10.0
    poll_interval: Annotated[float, Field(ge=0.01)] = 5.0
    notify: bool = True
    batch_size: Annotated[int, Field(ge=1)] = 1000
    retry_attempts: Annotated[int, Field(ge=1)] = 5
    retry_wait: Annotated[float, Field(ge=0)] = 0.5
    backoff_max: Annotated[float, Field(ge=0.01)] = 30.0
    partitions: Annotated[dict[str, Annotated[int, Field(ge=1, le=MAX_PARTITIONS)]], NoDecode] = (
        Field(default_factory=dict)
    )

    @field_validator("partitions", mode="before")
    @classmethod
    def _partitions(cls, value: Any) -> Any:
        """``name=K,name=K`` (spaces allowed) to a dict; a dict is taken as it is."""
        if not isinstance(value, str):
            return value
        found: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, count = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{item.strip()!r} is not NAME=K")
            found[name.strip()] = count.strip()
        return found

    def partitions_of(self, projection: type[Projection]) -> int:
        """The K ``projection`` runs as here: this setting's, else its class's."""
        return self.partitions.get(projection.name, projection.partitions)

    @field_validator("notify", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() not in {"0", "false", "no"}
        return value

    @property
    def renew_interval(self) -> float:
        """How often leases are renewed and free ones sought."""
        return self.lease_ttl / 3
