"""``sync shadow`` on QuickBooks: every entity type read back (``held``), the differences
between the books and the company reported, nothing written; also through the CLI, which
opens the target by its entry point."""

from __future__ import annotations

from pathlib import Path

import orjson

from hub.store import EventStore
from hub.store.projections import ProjectionStore
from hub.sync.sender import Backoff, Sender
from hub.sync.shadow import compare
from projections.accounting import Accounting
from tests.accounting.harness import cli, documents, running, settle
from tests.accounting.test_xero_documents import shop_scenario
from tests.ledger.harness import Books
from tests.quickbooks.harness import SECRET_ENV, new_fake, qbo, write_config

FAST = Backoff(attempts=4, initial=0.001, maximum=0.02)


async def test_shadow_reads_every_type_back_and_writes_nothing(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    fake = new_fake()
    write_config(config, "per_transaction")
    async with running(dsn):
        await store.append(shop_scenario())
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="quickbooks")
    projections = ProjectionStore.over(store)
    async with qbo(tmp_path, fake=fake) as (_, target):
        assert {d.kind for d in await compare(projections, Accounting, "default", target)} == {
            "missing"
        }
        await Sender(store, Accounting, FAST).run("default", target)
        found = await compare(projections, Accounting, "default", target)
        # only the payment QuickBooks refused (parked) is not there
        (parked,) = found
        assert (parked.kind, docs[str(parked.doc_key)]["kind"]) == ("missing", "payment")
        (transfer,) = fake.live("Transfer")  # a bookkeeper deleted the payout's transfer
        del fake.store["Transfer"][transfer["Id"]]
        writes = fake.writes
        found = await compare(projections, Accounting, "default", target)
        assert len(found) == 2
        assert {docs[str(d.doc_key)]["kind"] for d in found} == {"payment", "transfer"}
        assert fake.writes == writes  # nothing written
        kinds = {(d.kind, d.doc_key) for d in found}

        write_config(config, "per_transaction", fake.url)  # the CLI opens the plugin on it
        code, out, err = await cli(
            dsn, config, tmp_path, "sync", "shadow", "--json", env={SECRET_ENV: "secret"}
        )
        assert code == 0, err
        reported = {(d["kind"], d["doc_key"]) for d in orjson.loads(out)["differences"]}
        assert reported == kinds
        assert fake.writes == writes
