"""The connector contract (``hub.testing.ConnectorContract``) run on every built-in connector that
has a mapper: the same suite a third-party connector package runs on itself.

For the connectors whose webhooks the suite can sign (independently of their verifiers, the way
each provider documents it), it also checks the verifier round trip on their samples.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest

from hub.spi.connector import Connector
from hub.spi.mapper import SourceEvent
from hub.spi.registry import connectors
from hub.spi.verifier import WebhookDelivery
from hub.testing import ConnectorContract

BUILT_IN = {
    name: connector
    for name, connector in connectors().items()
    if connector.__module__.partition(".")[0] == "connectors"
}
"""The connectors this repository ships (others may be installed: the example package's)."""


def test_the_built_in_connectors_are_registered_with_mappers() -> None:
    with_mappers = {name for name, connector in BUILT_IN.items() if connector.mapper is not None}
    assert {"stripe", "shopify", "woocommerce", "bank", "payroll"} <= with_mappers


def _b64_hmac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def _stripe(sample: SourceEvent, secret: bytes) -> WebhookDelivery | None:
    if sample.data.get("object") != "event":  # a pulled balance transaction, not a webhook
        return None
    body = orjson.dumps(sample.data)
    t = int(time.time())
    signature = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return WebhookDelivery("", {"stripe-signature": f"t={t},v1={signature}"}, body)


def _shopify(sample: SourceEvent, secret: bytes) -> WebhookDelivery | None:
    topic = sample.type.removeprefix("shopify.")
    if topic.count(".") != 1:  # balance transactions and payouts are pulled
        return None
    body = orjson.dumps(sample.data)
    headers = {
        "x-shopify-hmac-sha256": _b64_hmac(secret, body),
        "x-shopify-topic": topic.replace(".", "/"),
        "x-shopify-event-id": sample.external_id,
        "x-shopify-triggered-at": sample.occurred_at.isoformat(),
    }
    return WebhookDelivery("", headers, body)


def _woocommerce(sample: SourceEvent, secret: bytes) -> WebhookDelivery | None:
    body = orjson.dumps(sample.data)
    headers = {
        "x-wc-webhook-signature": _b64_hmac(secret, body),
        "x-wc-webhook-topic": sample.type.removeprefix("woocommerce."),
    }
    return WebhookDelivery("", headers, body)


SIGNERS = {"stripe": _stripe, "shopify": _shopify, "woocommerce": _woocommerce}


class TestBuiltInConnectors(ConnectorContract):
    @pytest.fixture(params=sorted(n for n, c in BUILT_IN.items() if c.mapper is not None), ids=str)
    def connector_class(self, request: pytest.FixtureRequest) -> type[Connector]:
        return BUILT_IN[str(request.param)]

    def signed(
        self, connector: type[Connector], sample: SourceEvent, secret: bytes
    ) -> WebhookDelivery | None:
        signer = SIGNERS.get(connector.name)
        return None if signer is None else signer(sample, secret)
