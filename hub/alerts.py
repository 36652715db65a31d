"""The alert channel: one Slack-compatible JSON POST per alert to ``[alerts] webhook_url``.

An ``Alert`` says what happened (``kind``: ``health``, ``security`` …), in words for a person
(``text``) and as fields for a machine (``details``). ``AlertChannel.send`` POSTs
``{"text": text, "ledgerhub": {"kind": kind, **details}}`` with a timeout and a few retries
(tenacity: a timeout, a lost connection, a 429 or a 5xx is retried), and never raises into its
caller: an alert that could not be delivered is a warning log line and counts in
``ledgerhub_alerts_total{kind, outcome}``. With no webhook configured each alert is only a
warning log line (outcome ``logged``).

The webhook URL is a secret (a Slack incoming-webhook URL carries its token): it is never logged.
HTTP goes through a ``hub.spi.puller.Transport`` (aiohttp by default, one short-lived session per
alert: alerts are rare), so tests can point the channel at a local receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from hub.spi.puller import AiohttpTransport, Response, SourceUnavailable, Transport
from hub.telemetry import TELEMETRY

if TYPE_CHECKING:
    from hub.config.file import Config

log = logging.getLogger(__name__)

AlertOutcome = Literal["sent", "failed", "logged"]


@dataclass(frozen=True)
class Alert:
    """One thing an operator should hear about."""

    kind: str
    """What raised it: ``health``, ``security`` … (the ``ledgerhub.kind`` of the POST)."""
    text: str
    """One line for a person (Slack shows it)."""
    details: Mapping[str, Any]
    """Fields for a machine, merged into the POST's ``ledgerhub`` object (JSON-serialisable)."""

    def payload(self) -> dict[str, Any]:
        """The JSON body POSTed: ``{"text", "ledgerhub": {"kind", **details}}``."""
        return {"text": self.text, "ledgerhub": {"kind": self.kind, **self.details}}


class AlertMetrics:
    """``ledgerhub.alerts`` (Prometheus ``ledgerhub_alerts_total``): alerts by kind and outcome."""

    def __init__(self) -> None:
        meter = TELEMETRY.provider.get_meter("ledgerhub")
        self._alerts = meter.create_counter(
            "ledgerhub.alerts",
            description="Alerts raised, by kind and outcome (sent, failed, logged: no webhook)",
        )

    def alert(self, kind: str, outcome: AlertOutcome) -> None:
        """One alert of ``kind`` ended ``outcome``."""
        self._alerts.add(1, {"kind": kind, "outcome": outcome})


METRICS = AlertMetrics()
"""This process's alert counter."""


class _Refused(Exception):
    """The receiver answered a status that retrying will not change (a 4xx other than 429)."""


class AlertChannel:
    """Delivers alerts to one webhook (or, without one, to the log only)."""

    def __init__(
        self,
        webhook_url: str | None,
        *,
        transport: Transport | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        wait_initial: float = 0.5,
        wait_max: float = 5.0,
    ) -> None:
        self._url = webhook_url
        self._transport = transport
        self._timeout = timeout
        self._attempts = attempts
        self._wait_initial = wait_initial
        self._wait_max = wait_max

    @classmethod
    def from_config(cls, config: Config, *, transport: Transport | None = None) -> AlertChannel:
        """The channel ``config``'s ``[alerts]`` section names (no webhook: log only)."""
        return cls(config.alerts.webhook(), transport=transport)

    @property
    def configured(self) -> bool:
        """True when alerts are POSTed somewhere (not only logged)."""
        return self._url is not None

    async def send(self, alert: Alert) -> None:
        """Deliver ``alert``; never raises (a failure is a warning line and a metric)."""
        if self._url is None:
            log.warning("alert (no [alerts] webhook_url configured): %s", alert.text,
                        extra={"alert_kind": alert.kind})  # fmt: skip
            METRICS.alert(alert.kind, "logged")
            return
        body = orjson.dumps(alert.payload(), default=str)
        try:
            if self._transport is not None:
                await self._deliver(self._transport, self._url, body)
            else:
                async with aiohttp.ClientSession() as session:
                    await self._deliver(AiohttpTransport(session, self._timeout), self._url, body)
        except Exception as exc:  # an alert must never break its caller
            reason = exc.last_attempt.exception() if isinstance(exc, RetryError) else exc
            log.warning("alert not delivered: %s (%s)", alert.text, reason or type(exc).__name__,
                        extra={"alert_kind": alert.kind})  # fmt: skip
            METRICS.alert(alert.kind, "failed")
            return
        METRICS.alert(alert.kind, "sent")

    async def _deliver(self, transport: Transport, url: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}

        async def attempt() -> Response:
            response = await transport.request("POST", url, headers, body)
            if response.status == 429 or response.status >= 500:
                raise SourceUnavailable(f"the alert webhook answered {response.status}")
            if response.status >= 400:
                raise _Refused(f"the alert webhook answered {response.status}")
            return response

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=self._wait_initial, max=self._wait_max),
            retry=retry_if_exception_type(SourceUnavailable),
            reraise=True,
        )
        await retrying(attempt)
