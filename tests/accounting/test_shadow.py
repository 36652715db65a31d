"""Shadow mode: the differences between the books and a target, with nothing written."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson

from connectors.beancount import BeancountTarget
from hub.domain.documents import Document
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from hub.sync.sender import Sender
from hub.sync.shadow import compare
from projections.accounting import Accounting
from tests.accounting.harness import cli, documents, running, settle, write_config
from tests.accounting.targets import CHART
from tests.ledger.harness import Books
from tests.ledger.scenarios import STRIPE_SOURCE, stripe_scenario


async def test_shadow_reports_missing_changed_and_extra_and_writes_nothing(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    target = BeancountTarget(tmp_path / "sync" / "default.beancount", CHART)
    projections = ProjectionStore.over(store)
    async with running(dsn):
        await store.append(scenario.before_payout)
        await settle(books.conn, ("ledger", "accounting"))
    found = await compare(projections, Accounting, "default", target)
    assert {d.kind for d in found} == {"missing"}
    await Sender(store, Accounting).run("default", target)
    assert await compare(projections, Accounting, "default", target) == []

    async with running(dsn):
        await store.append(scenario.payout_paid)  # the payout's journal now has the deposit
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn)
    journal = f"payout/{STRIPE_SOURCE}/{scenario.payout_id}"
    kept = docs[journal]["idempotency_key"]
    stray = next(h for h in await target.held() if h.idempotency_key != kept)
    await target.void(stray.target_id)  # someone removed one at the target
    alien = Document("default", "beancount", "hand/1", "journal", date(2024, 3, 9), "by hand",
                     (("1000", "USD", 100), ("4000", "USD", -100)))  # fmt: skip
    await target.create(alien)  # and added one the books do not call for
    before = target.path.read_bytes()

    found = await compare(projections, Accounting, "default", target)
    kinds = {(d.kind, d.doc_key) for d in found}
    missing = next(key for key, row in docs.items() if row["idempotency_key"] == stray.target_id)
    assert kinds == {("changed", journal), ("missing", missing), ("extra", None)}
    assert [d.idempotency_key for d in found if d.kind == "extra"] == [alien.idempotency_key]
    assert target.path.read_bytes() == before  # nothing written

    code, out, err = await cli(dsn, config, tmp_path, "sync", "shadow", "--json")
    assert code == 0, err
    reported = {(d["kind"], d["doc_key"]) for d in orjson.loads(out)["differences"]}
    assert reported == kinds
    assert target.path.read_bytes() == before
