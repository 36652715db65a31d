"""Re-check stored webhook deliveries: each event's raw body against its connection's secret.

Proves provenance long after the fact: the signature headers kept in ``meta["webhook"]`` must
verify over the stored ``raw`` bytes with the connection's secret (freshness is not judged), and
the event's ``external_id``, ``type`` and ``data`` must be what the connector reads from those
bytes, so neither the body nor the payload derived from it can have been changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.config import Config
from hub.domain.events import RecordedEvent
from hub.errors import RejectedError
from hub.spi.registry import connector as installed_connector
from hub.spi.verifier import WebhookDelivery
from hub.store.events import EventStore


@dataclass(frozen=True)
class SignatureFailure:
    """A stored delivery that does not verify."""

    position: int
    source: str
    reason: str


@dataclass
class SignatureReport:
    """The outcome of re-verifying every stored delivery."""

    checked: int = 0
    failures: list[SignatureFailure] = field(default_factory=list)
    unverifiable: list[SignatureFailure] = field(default_factory=list)
    """Deliveries whose connection or secret is no longer configured."""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unverifiable


def check_delivery(event: RecordedEvent, config: Config) -> tuple[str, str] | None:
    """None if ``event``'s delivery verifies, else (``failed`` | ``unverifiable``, reason)."""
    webhook = event.meta.get("webhook")
    if not isinstance(webhook, dict) or event.raw is None:
        return ("failed", "the event claims a webhook delivery but has no raw body or headers")
    connection = config.connection(event.source)
    plugin = installed_connector(str(webhook.get("connector", "")))
    secret = connection.secret() if connection is not None else None
    if connection is None or plugin is None or plugin.verifier is None or secret is None:
        return (
            "unverifiable",
            f"connection {event.source!r} or its webhook_secret is not configured",
        )
    headers = webhook.get("headers")
    delivery = WebhookDelivery(
        url=str(webhook.get("url", "")),
        headers={str(k).lower(): str(v) for k, v in headers.items()}
        if isinstance(headers, dict)
        else {},
        body=event.raw,
    )
    try:
        plugin.verifier.verify(delivery, secret, now=None)
        found = plugin.verifier.events(delivery)
    except RejectedError as exc:
        return ("failed", exc.detail)
    match = next((f for f in found if f.external_id == event.external_id), None)
    if match is None:
        return ("failed", f"the signed body holds no event {event.external_id!r}")
    if match.type != event.type or match.data != event.data:
        return ("failed", "the stored type or data differ from what the signed body holds")
    return None


async def verify_signatures(
    store: EventStore,
    config: Config,
    *,
    batch: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> SignatureReport:
    """Re-verify every event that came in as a signed webhook delivery."""
    report = SignatureReport()
    total = await store.head()
    after = 0
    while events := await store.read_after(after, limit=batch):
        for event in events:
            after = event.position
            if event.raw is None and "webhook" not in event.meta:
                continue
            report.checked += 1
            outcome = check_delivery(event, config)
            if outcome is not None:
                kind, reason = outcome
                failure = SignatureFailure(event.position, event.source, reason)
                (report.failures if kind == "failed" else report.unverifiable).append(failure)
        if on_progress is not None:
            on_progress(after, total)
    return report
