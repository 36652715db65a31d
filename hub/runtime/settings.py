"""The projection runtime's knobs, from the environment (short values make tests fast)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from hub.errors import ConfigError


@dataclass(frozen=True)
class RuntimeSettings:
    """How workers run projections.

    - ``LEDGERHUB_LEASE_TTL`` (seconds, default 10): a lease not renewed for this long may be
      taken over. Leases are renewed and free ones sought every third of it, so a dead worker's
      projections are taken over within ``4/3 * TTL`` (13.3 s by default).
    - ``LEDGERHUB_POLL_INTERVAL`` (seconds, default 5): how often an idle projection looks for
      new events when no ``NOTIFY`` woke it.
    - ``LEDGERHUB_NOTIFY`` (``1``/``0``, default 1): listen for ``NOTIFY`` at all.
    - ``LEDGERHUB_BATCH_SIZE`` (default 1000): events per transaction.
    - ``LEDGERHUB_RETRY_ATTEMPTS`` (default 5) and ``LEDGERHUB_RETRY_WAIT`` (seconds, default 0.5,
      doubling up to 30): a handler's ``RetriableError`` is retried this often before the event
      is parked.
    - ``LEDGERHUB_BACKOFF_MAX`` (seconds, default 30): the longest wait after a database error.
    """

    lease_ttl: float = 10.0
    poll_interval: float = 5.0
    notify: bool = True
    batch_size: int = 1000
    retry_attempts: int = 5
    retry_wait: float = 0.5
    backoff_max: float = 30.0

    @property
    def renew_interval(self) -> float:
        """How often leases are renewed and free ones sought."""
        return self.lease_ttl / 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            lease_ttl=_number(env, "LEDGERHUB_LEASE_TTL", default.lease_ttl, minimum=0.3),
            poll_interval=_number(env, "LEDGERHUB_POLL_INTERVAL", default.poll_interval),
            notify=env.get("LEDGERHUB_NOTIFY", "1").strip().lower() not in {"0", "false", "no"},
            batch_size=int(_number(env, "LEDGERHUB_BATCH_SIZE", default.batch_size, minimum=1)),
            retry_attempts=int(
                _number(env, "LEDGERHUB_RETRY_ATTEMPTS", default.retry_attempts, minimum=1)
            ),
            retry_wait=_number(env, "LEDGERHUB_RETRY_WAIT", default.retry_wait, minimum=0),
            backoff_max=_number(env, "LEDGERHUB_BACKOFF_MAX", default.backoff_max),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.01) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {text!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {text!r}")
    return value
