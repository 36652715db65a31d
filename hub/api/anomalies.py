"""Usage anomalies of API keys, watched in memory per serving process; each raises an alert.

Three kinds raise an alert through the operations channel (``hub.alerts.AlertChannel``: a
POST of ``{"text", "ledgerhub": {"kind": "security", "anomaly", "key_id", "key_prefix",
"network", …}}`` to ``[alerts] webhook_url``, a warning log line when none is configured) and
count in ``ledgerhub_security_anomalies_total{kind}``:

- ``new_network`` — a key with an established history is used from a network it has never been
  seen from. Networks are the client address's /24 (IPv4) or /64 (IPv6), the address as
  ``hub.api.auth`` resolves it (``--trust-proxy`` honoured) — a provider's addresses change
  within such a block, so a move inside it is no anomaly; a loopback address is a network of
  its own (127.0.0.2 is not 127.0.0.1: on one machine each is a different set-up, such as a
  tunnel or a container network, and local addresses do not drift). A key's history is
  established once it has made ``ESTABLISHED_USES`` requests (its stored ``use_count`` plus this
  process's) and has been seen from at least one network. The networks a key was seen from
  are kept in ``ledgerhub.api_keys.seen_networks``, written with the use counts every
  ``USAGE_FLUSH_SECONDS`` (``hub.store.keys``), so they outlive a restart; until then this
  process remembers them. A key's first network is never an anomaly.
- ``rate_burst`` — a key far above its usual rate. Requests are counted per key in buckets of
  ``BUCKET_SECONDS``; the usual rate is an exponentially weighted average of the closed buckets
  (weight ``BASELINE_WEIGHT``; idle buckets count as 0). Once ``BASELINE_BUCKETS`` buckets have
  closed, a bucket holding more than ``BURST_FACTOR`` times the usual count, and at least
  ``BURST_FLOOR`` requests, is a burst. (Going over the key's configured limit, answered 429, is
  a separate warning line, as before.)
- ``auth_failures`` — ``FAILURES_TO_WARN`` failed authentications from one client address within
  ``FAILURE_WINDOW_SECONDS``.

No storm: an alert goes out at most once per (key, kind, network) per ``ALERT_WINDOW_SECONDS``
(for ``auth_failures``: per address). Warning lines (logger ``hub.api.auth``) keep their
once-per-minute rule and never name more of a key than its prefix. All of this is memory and
a few dictionary operations per request, never a database round trip; each API process watches
its own requests (``serve --processes N``: a new network may alert once per process).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from hub.alerts import Alert, AlertChannel
from hub.domain.keys import Address, ApiKey
from hub.telemetry import TELEMETRY

log = logging.getLogger("hub.api.auth")

FAILURES_TO_WARN = 20
FAILURE_WINDOW_SECONDS = 60.0
ALERT_WINDOW_SECONDS = 3600.0
ESTABLISHED_USES = 20
BUCKET_SECONDS = 10.0
BASELINE_WEIGHT = 0.2
BASELINE_BUCKETS = 6
BURST_FACTOR = 10.0
BURST_FLOOR = 50
_MAX_WATCHED = 10_000
ALERT_KIND = "security"
"""The ``kind`` of every alert raised here (the anomaly is in ``details["anomaly"]``)."""


class AnomalyMetrics:
    """``ledgerhub.security.anomalies`` (Prometheus ``ledgerhub_security_anomalies_total``)."""

    def __init__(self) -> None:
        meter = TELEMETRY.provider.get_meter("ledgerhub")
        self._anomalies = meter.create_counter(
            "ledgerhub.security.anomalies",
            description="Usage anomalies of API keys, by kind (new_network, rate_burst, "
            "auth_failures, refused_address, over_rate)",
        )

    def anomaly(self, kind: str) -> None:
        """One anomaly of ``kind`` was seen."""
        self._anomalies.add(1, {"kind": kind})


METRICS = AnomalyMetrics()
"""This process's anomaly counter."""


def network_of(address: Address) -> str:
    """The network an address is judged by: its /24 (IPv4; an IPv4-mapped IPv6 address counts
    as IPv4) or its /64 (IPv6); a loopback address is a network of its own."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix: int = 24 if address.version == 4 else 64
    if address.is_loopback:
        prefix = address.max_prefixlen
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass
class _Rate:
    """A key's request counts: the open bucket and the baseline of the closed ones."""

    bucket: float
    count: int = 0
    baseline: float = 0.0
    closed: int = 0

    def add(self, now: float) -> int:
        """Count a request at ``now`` (closing buckets that ended); the open bucket's count."""
        if now - self.bucket >= BUCKET_SECONDS:
            ended = int((now - self.bucket) // BUCKET_SECONDS)
            # the open bucket's count, then `ended - 1` idle ones
            self.baseline += BASELINE_WEIGHT * (self.count - self.baseline)
            self.baseline *= (1 - BASELINE_WEIGHT) ** min(ended - 1, 1000)
            self.closed += ended
            self.bucket += ended * BUCKET_SECONDS
            self.count = 0
        self.count += 1
        return self.count

    def bursting(self) -> bool:
        """Whether the open bucket is far above the usual rate."""
        return (
            self.closed >= BASELINE_BUCKETS
            and self.count >= BURST_FLOOR
            and self.count > BURST_FACTOR * self.baseline
        )


class AnomalyWatch:
    """What ``hub.api.auth`` watches for (see the module docstring), in this process's memory.

    ``alerts``: where alerts go (None: log lines and the metric only); ``clock``: seconds, for
    the windows and buckets.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        alerts: AlertChannel | None = None,
    ) -> None:
        self._clock = clock
        self._alerts = alerts
        self._failures: dict[str, tuple[float, int]] = {}
        self._warned: dict[str, float] = {}
        self._alerted: dict[tuple[str, str, str], float] = {}
        self._uses: dict[uuid.UUID, int] = {}
        self._networks: dict[uuid.UUID, set[str]] = {}
        self._rates: dict[uuid.UUID, _Rate] = {}
        self._sending: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ per request

    def key_used(
        self, key: ApiKey, network: str | None, known: Callable[[], Collection[str]]
    ) -> None:
        """``key`` was accepted for a request from ``network`` (None: no address could be
        told); ``known`` gives the networks the key store has seen it from (called only for
        a network this process has not seen the key from)."""
        now = self._clock()
        uses = self._uses.get(key.id, 0) + 1
        if len(self._uses) >= _MAX_WATCHED and key.id not in self._uses:
            self._uses.clear()
            self._networks.clear()
            self._rates.clear()
        self._uses[key.id] = uses
        if network is not None:
            self._network(key, network, uses, known)
        rate = self._rates.get(key.id)
        if rate is None:
            rate = self._rates[key.id] = _Rate(bucket=now)
        count = rate.add(now)
        if rate.bursting():
            self._raise(
                "rate_burst",
                key,
                network or "unknown",
                f"API key {key.prefix}… made {count} requests within {BUCKET_SECONDS:g} s, "
                f"far above its usual {rate.baseline:.1f}",
                {"requests": count, "seconds": BUCKET_SECONDS, "usual": round(rate.baseline, 2)},
            )

    def _network(
        self, key: ApiKey, network: str, uses: int, known: Callable[[], Collection[str]]
    ) -> None:
        seen = self._networks.get(key.id)
        if seen is not None and network in seen:
            return
        if seen is None:
            seen = self._networks[key.id] = set(known())
            if network in seen:
                return
        established = bool(seen) and key.use_count + uses > ESTABLISHED_USES
        seen.add(network)
        if established:
            self._raise(
                "new_network",
                key,
                network,
                f"API key {key.prefix}… used from {network}, a network it has not been "
                "seen from before",
                {"known_networks": sorted(seen - {network})[:20]},
            )

    def auth_failed(self, address: str, network: str | None = None) -> None:
        """A request from ``address`` had no valid key."""
        now = self._clock()
        start, count = self._failures.get(address, (now, 0))
        if now - start >= FAILURE_WINDOW_SECONDS:
            start, count = now, 0
        if len(self._failures) >= _MAX_WATCHED:
            self._failures.clear()
        self._failures[address] = (start, count + 1)
        if count + 1 < FAILURES_TO_WARN:
            return
        if self._once(f"auth {address}", now):
            log.warning(
                "anomaly: %d failed authentications from %s within %.0f s",
                count + 1,
                address,
                FAILURE_WINDOW_SECONDS,
            )
        self._raise(
            "auth_failures",
            None,
            address,
            f"{count + 1} failed authentications from {address} within "
            f"{FAILURE_WINDOW_SECONDS:.0f} s",
            {"address": address, "failures": count + 1, "network": network or address},
        )

    def refused_address(self, key: ApiKey, address: str) -> None:
        """``key`` was used from ``address``, which its allowlist refuses."""
        if self._once(f"address {key.id} {address}", self._clock()):
            METRICS.anomaly("refused_address")
            log.warning("anomaly: key %s… used from %s, outside its allowlist", key.prefix, address)

    def over_rate(self, key: ApiKey) -> None:
        """``key`` went over its rate limit."""
        if self._once(f"rate {key.id}", self._clock()):
            METRICS.anomaly("over_rate")
            log.warning("anomaly: key %s… is over its rate limit", key.prefix)

    # ------------------------------------------------------------------ alerts

    def _once(self, what: str, now: float) -> bool:
        last = self._warned.get(what)
        if last is not None and now - last < FAILURE_WINDOW_SECONDS:
            return False
        if len(self._warned) >= _MAX_WATCHED:
            self._warned.clear()
        self._warned[what] = now
        return True

    def _raise(
        self, kind: str, key: ApiKey | None, network: str, text: str, details: dict[str, Any]
    ) -> None:
        """Alert ``kind`` for (``key``, ``network``), unless it went out within the window."""
        now = self._clock()
        what = (str(key.id) if key is not None else "-", kind, network)
        last = self._alerted.get(what)
        if last is not None and now - last < ALERT_WINDOW_SECONDS:
            return
        if len(self._alerted) >= _MAX_WATCHED:
            self._alerted.clear()
        self._alerted[what] = now
        METRICS.anomaly(kind)
        if key is not None:
            log.warning("anomaly: %s", text)
        if self._alerts is None:
            return
        alert = Alert(
            kind=ALERT_KIND,
            text=text,
            details={
                "anomaly": kind,
                "key_id": None if key is None else str(key.id),
                "key_prefix": None if key is None else key.prefix,
                "tenant": None if key is None else key.tenant,
                "network": network,
                **details,
            },
        )
        task = asyncio.get_running_loop().create_task(self._alerts.send(alert))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the alerts still being sent (when the server stops)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
