"""``document_missing``: an order whose accounting document the sync target has not confirmed
(no ``accounting.document.synced`` for its document) once the tenant's grace period has passed,
and the document in an order's chain."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.store import EventStore
from projections.reconciliation import queries
from projections.reconciliation.routes import OrderChainOut
from tests.ledger.harness import new, sample
from tests.reconciliation.harness import Recon
from tests.reconciliation.scenarios import SHOP

DAY = date(2008, 1, 10)  # the sample order's day
GRACE = 3


def _order(order_id: int, status: str = "paid") -> Any:
    order = {**sample("shopify", "shopify.orders.create"), "id": order_id,
             "name": f"#{order_id}", "financial_status": status}  # fmt: skip
    return new(SHOP, f"o-{order_id}", "shopify.orders.create", order, order["created_at"])


def _synced(doc_key: str, operation: str = "create") -> Any:
    data = {"target": "beancount", "doc_key": doc_key, "target_id": f"bc-{doc_key}",
            "idempotency_key": "lh-x", "content_hash": "0" * 64,
            "operation": operation}  # fmt: skip
    return new("sync:beancount", f"{doc_key}#{operation}", "accounting.document.synced", data,
               "2008-01-11T09:00:00+00:00")  # fmt: skip


async def _missing(recon: Recon, as_of: date) -> set[str]:
    found = await recon.exceptions(as_of=as_of, kind="document_missing")
    return {e["reference"] for e in found}


async def _document(recon: Recon, order_id: str) -> dict[str, Any] | None:
    chain = await queries.order_chain(recon.conn, "default", order_id, as_of=DAY)
    assert chain is not None
    OrderChainOut.model_validate(chain)  # the HTTP answer's shape
    document: dict[str, Any] | None = chain["document"]
    return document


@pytest.fixture
def syncing(config: Path) -> Path:
    """The default tenant syncs to Beancount, with a grace period of ``GRACE`` days."""
    config.write_text(
        '[tenants.default]\nsync = { target = "beancount", mode = "per_transaction" }\n'
        f"[tenants.default.reconciliation]\ndocument_grace_days = {GRACE}\n"
    )
    return config


@pytest.mark.usefixtures("syncing")
async def test_an_unconfirmed_document_is_missing_after_the_grace_period(
    store: EventStore, recon: Recon
) -> None:
    await recon.run(store, [_order(3001), _order(3002), _order(3003, "voided")])
    first = await _document(recon, "3001")
    assert first is not None
    assert first["status"] == "unsent"
    assert first["doc_key"].startswith(f"{SHOP}/")
    assert await _missing(recon, DAY + timedelta(days=GRACE)) == set()
    assert await _missing(recon, DAY + timedelta(days=GRACE + 1)) == {"3001", "3002"}

    await recon.run(store, [_synced(first["doc_key"])])
    assert await _missing(recon, DAY + timedelta(days=GRACE + 1)) == {"3002"}
    confirmed = await _document(recon, "3001")
    assert confirmed == {**first, "status": "synced", "target": "beancount",
                         "target_id": f"bc-{first['doc_key']}"}  # fmt: skip
    second = await _document(recon, "3002")
    assert second is not None
    assert second["status"] == "unsent"
    assert second["doc_key"] != first["doc_key"]

    await recon.run(store, [_synced(first["doc_key"], "void")])
    assert await _missing(recon, DAY + timedelta(days=GRACE + 1)) == {"3001", "3002"}


async def test_a_tenant_that_syncs_nowhere_expects_no_document(
    store: EventStore, recon: Recon
) -> None:
    await recon.run(store, [_order(3101)])
    assert await _missing(recon, DAY + timedelta(days=365)) == set()
    assert await _document(recon, "3101") is None
