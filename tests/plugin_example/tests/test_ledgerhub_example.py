"""The example package's own tests: the hub's contract suites (``hub.testing``, a pytest plugin
that comes with ledgerhub) run on its connector and its target, plus what is particular to them.

Nothing here imports the hub's internals, only ``hub.testing``, ``hub.spi``, ``hub.domain``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ledgerhub_example.connector import AcmePayConnector
from ledgerhub_example.target import JsonLinesPlugin, JsonLinesTarget
from ledgerhub_example.webhook import AcmePayVerifier, sign

from hub.domain.documents import Document
from hub.domain.events import NewEvent
from hub.errors import SignatureInvalid
from hub.spi.connector import Connector
from hub.spi.mapper import SourceEvent
from hub.spi.target import Target
from hub.spi.verifier import WebhookDelivery
from hub.testing import ConnectorContract, TargetContract

URL = "https://hub.example.com/v1/webhooks/acmepay/acct_demo"


class TestAcmePayConnector(ConnectorContract):
    connector = AcmePayConnector

    def signed(
        self, connector: type[Connector], sample: SourceEvent, secret: bytes
    ) -> WebhookDelivery | None:
        body = json.dumps(sample.data).encode()
        return WebhookDelivery(URL, sign(body, secret), body)


class TestJsonLinesTarget(TargetContract):
    plugin = JsonLinesPlugin()
    settings: ClassVar[Mapping[str, Any]] = {"path": "books/default.jsonl"}

    def validate_held(self, target: Target) -> None:
        """Every line is a JSON object, and every created document balances per currency."""
        assert isinstance(target, JsonLinesTarget)
        for line in target.path.read_text().splitlines():
            entry = json.loads(line)
            if entry["op"] == "create":
                sums: dict[str, int] = {}
                for posting in entry["document"]["postings"]:
                    sums[posting["currency"]] = sums.get(posting["currency"], 0) + posting["minor"]
                assert set(sums.values()) <= {0}, entry


def test_a_stale_signature_is_refused_when_delivered_but_verifies_when_stored() -> None:
    body = b'{"id": "evt_1", "type": "payment.succeeded", "created_at": "2026-03-02T14:05:00Z"}'
    an_hour_ago = int(datetime.now(UTC).timestamp()) - 3600
    headers = {"acme-signature": sign(body, b"s", an_hour_ago)["Acme-Signature"]}
    delivery = WebhookDelivery(URL, headers, body)
    with pytest.raises(SignatureInvalid, match="old"):
        AcmePayVerifier().verify(delivery, b"s", now=datetime.now(UTC))
    AcmePayVerifier().verify(delivery, b"s", now=None)


@pytest.mark.asyncio
async def test_the_journal_only_grows_and_writes_amounts_in_major_units(tmp_path: Path) -> None:
    target = JsonLinesTarget(tmp_path / "books.jsonl", {"1200", "4000"})
    doc = Document("default", "jsonl", "k/1", "payment", date(2026, 3, 2), "payment",
                   (("1200", "KWD", 12345), ("4000", "KWD", -12345)))  # fmt: skip
    receipt = await target.create(doc)
    await target.void(receipt.target_id)
    lines = [json.loads(line) for line in target.path.read_text().splitlines()]
    assert [line["op"] for line in lines] == ["create", "void"]
    assert [p["amount"] for p in lines[0]["document"]["postings"]] == ["12.345", "-12.345"]
    assert await target.held() == []


@pytest.mark.asyncio
async def test_the_samples_go_into_a_real_log_once(store: Any) -> None:
    """``store`` (the plugin's fixture): the event store on a fresh PostgreSQL database."""
    mapper = AcmePayConnector.mapper
    assert mapper is not None
    events = [
        NewEvent(source=s.source, external_id=s.external_id, type=s.type,
                 occurred_at=s.occurred_at, data=dict(s.data))
        for s in mapper.samples()
    ]  # fmt: skip
    first = await store.append(events)
    again = await store.append(events)  # a webhook redelivered
    assert [r.status for r in first] == ["appended"] * len(events)
    assert [r.status for r in again] == ["duplicate"] * len(events)
    assert [r.position for r in again] == [r.position for r in first]
