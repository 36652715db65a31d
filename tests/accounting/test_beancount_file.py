"""The Beancount target's file: beancount's own entries and printer, in date order, opens at
first use, written once per batch, read once and again only when another writer changed it."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data

from connectors.beancount import BeancountTarget
from hub.domain.documents import Document
from hub.errors import TargetUnavailable
from tests.accounting.targets import CHART, bean_check


def doc(key: str, day: date, amount: int = 1099, currency: str = "USD", **kw: str) -> Document:
    """A payment of ``amount`` minor units from Sales (4000) to Stripe clearing (1200)."""
    fields = {"description": f"payment {key}", "kind": "payment", **kw}
    return Document("default", "beancount", key, fields["kind"], day, fields["description"],
                    (("1200", currency, amount), ("4000", currency, -amount)))  # fmt: skip


class Counted(BeancountTarget):
    """The target, counting whole-file writes and able to fail them."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, CHART, title="Acme Ltd")
        self.writes = 0
        self.failing = False

    def _write(self, text: str) -> tuple[int, int, int]:
        if self.failing:
            raise OSError(28, "No space left on device")
        self.writes += 1
        return super()._write(text)


def text_of(path: Path) -> str:
    return path.read_text()


def bytes_of(path: Path) -> bytes:
    return path.read_bytes()


def exists(path: Path) -> bool:
    return path.exists()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(text)


def listing(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def loaded(path: Path) -> tuple[list[data.Directive], dict[str, object]]:
    entries, errors, options = loader.load_file(str(path))
    assert errors == []
    return entries, options


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "books" / "acme.beancount"


async def test_the_file_is_beancounts_own_entries_in_date_order(path: Path) -> None:
    target = Counted(path)
    async with target.batch():
        await target.create(doc("late", date(2024, 5, 2)))
        await target.create(doc("yen", date(2024, 2, 1), 1500, "JPY"))
        await target.create(doc("early", date(2024, 1, 15), -7))
        await target.create(doc("kwd", date(2024, 3, 3), 12345, "KWD"))
        await target.create(doc("usd", date(2024, 3, 3), 250))
    bean_check(path)
    entries, options = loaded(path)
    assert options["title"] == "Acme Ltd"
    assert options["operating_currency"] == ["USD"]  # the currency most postings use
    opens = [e for e in entries if isinstance(e, data.Open)]
    # each account opened on the date of its first use, not at some epoch
    assert {(o.account, o.date) for o in opens} == {
        ("Assets:1200-Stripe-Clearing", date(2024, 1, 15)),
        ("Income:4000-Sales", date(2024, 1, 15)),
    }
    text = text_of(path)
    assert "1970" not in text
    txns = [e for e in entries if isinstance(e, data.Transaction)]
    assert [t.meta["lh-doc"] for t in txns] == ["early", "yen", "kwd", "usd", "late"]
    # the file's own order is the date order too (opens first on their date)
    assert text.index("open Assets:1200") < text.index('"payment early"')
    assert (
        text.index('"payment early"') < text.index('"payment yen"') < text.index('"payment late"')
    )
    by_doc = {t.meta["lh-doc"]: t for t in txns}
    assert str(by_doc["yen"].postings[0].units) == "1500 JPY"
    assert str(by_doc["kwd"].postings[0].units) == "12.345 KWD"
    assert str(by_doc["early"].postings[0].units) == "-0.07 USD"
    usd = doc("usd", date(2024, 3, 3), 250)
    assert by_doc["usd"].meta["lh-key"] == usd.idempotency_key
    assert by_doc["usd"].meta["lh-hash"] == usd.content_hash
    assert by_doc["usd"].meta["lh-kind"] == "payment"


async def test_a_batch_writes_the_file_once_and_single_calls_each_write(path: Path) -> None:
    target = Counted(path)
    async with target.batch():
        for n in range(50):
            await target.create(doc(f"d{n}", date(2024, 1, 1 + n % 28)))
        assert target.writes == 0
        assert not exists(path)  # nothing durable until the flush
    assert target.writes == 1
    await target.create(doc("single", date(2024, 2, 1)))
    assert target.writes == 2
    await target.create(doc("single", date(2024, 2, 1)))  # held already: nothing to write
    await target.void("lh-not-there")
    assert target.writes == 2
    assert len(await BeancountTarget(path, CHART).held()) == 51


async def test_leaving_a_batch_with_an_error_drops_what_was_not_written(path: Path) -> None:
    target = Counted(path)
    kept = await target.create(doc("kept", date(2024, 1, 2)))
    before = bytes_of(path)

    async def dies() -> None:
        async with target.batch():
            await target.create(doc("lost", date(2024, 1, 3)))
            await target.void(kept.target_id)
            raise RuntimeError("the sender died")

    with pytest.raises(RuntimeError):
        await dies()
    assert bytes_of(path) == before
    assert [h.target_id for h in await target.held()] == [kept.target_id]


async def test_a_failed_write_leaves_the_old_file_and_a_retry_writes_it(path: Path) -> None:
    target = Counted(path)
    kept = await target.create(doc("kept", date(2024, 1, 2)))
    before = bytes_of(path)
    target.failing = True
    async with target.batch():
        added = await target.create(doc("added", date(2024, 1, 3)))
        with pytest.raises(TargetUnavailable, match="No space left"):
            await target.flush()
        assert bytes_of(path) == before
        assert listing(path.parent) == [path]  # no temporary file left behind
        target.failing = False
        await target.flush()  # the batch's changes were kept for the retry
    held = {h.target_id for h in await BeancountTarget(path, CHART).held()}
    assert held == {kept.target_id, added.target_id}


async def test_what_could_not_be_written_is_dropped_at_the_end(path: Path) -> None:
    target = Counted(path)
    kept = await target.create(doc("kept", date(2024, 1, 2)))
    before = bytes_of(path)
    target.failing = True
    with pytest.raises(TargetUnavailable):
        await target.create(doc("single", date(2024, 1, 3)))  # a single call's write fails

    async def batch() -> None:
        async with target.batch():
            await target.create(doc("batched", date(2024, 1, 4)))

    with pytest.raises(TargetUnavailable):
        await batch()  # the batch's end cannot write either
    target.failing = False
    assert bytes_of(path) == before
    assert [h.target_id for h in await target.held()] == [kept.target_id]
    assert target.writes == 1


async def test_the_file_is_parsed_once_and_again_only_after_another_writer(path: Path) -> None:
    first, second = Counted(path), Counted(path)
    a = await first.create(doc("a", date(2024, 1, 1)))
    b = await second.create(doc("b", date(2024, 1, 2)))  # reads a's file, adds b
    c = await first.create(doc("c", date(2024, 1, 3)))  # sees the file changed: keeps b
    held = {h.target_id for h in await BeancountTarget(path, CHART).held()}
    assert held == {a.target_id, b.target_id, c.target_id}

    reads = 0
    original = BeancountTarget._read

    def counting(self: BeancountTarget) -> object:
        nonlocal reads
        reads += 1
        return original(self)

    third = BeancountTarget(path, CHART)
    setattr(third, "_read", counting.__get__(third))  # noqa: B010
    async with third.batch():
        for n in range(20):
            await third.create(doc(f"more{n}", date(2024, 2, 1)))
    await third.held()
    await third.create(doc("one more", date(2024, 2, 2)))
    assert reads == 1
    async with third.batch():
        pass  # a run that sends nothing reads nothing
    assert reads == 1

    other = await Counted(path).create(doc("by another process", date(2024, 3, 1)))
    async with third.batch():  # the first call of the next run notices, and reads the file
        mine = await third.create(doc("after it", date(2024, 3, 2)))
        await third.create(doc("and another", date(2024, 3, 3)))
    assert reads == 2
    held = {h.target_id for h in await BeancountTarget(path, CHART).held()}
    assert {other.target_id, mine.target_id} <= held
    assert len(held) == 3 + 20 + 1 + 3


async def test_an_open_moves_when_the_first_use_goes(path: Path) -> None:
    target = Counted(path)
    early = await target.create(doc("early", date(2024, 1, 5)))
    await target.create(doc("later", date(2024, 3, 9)))
    await target.void(early.target_id)
    opens = {e.account: e.date for e in loaded(path)[0] if isinstance(e, data.Open)}
    assert set(opens.values()) == {date(2024, 3, 9)}
    bean_check(path)


async def test_an_update_replaces_the_transaction_in_place(path: Path) -> None:
    target = Counted(path)
    first = doc("d", date(2024, 1, 5))
    receipt = await target.create(first)
    changed = dataclasses.replace(first, business_date=date(2024, 1, 1), description="amended")
    await target.update(receipt.target_id, changed)
    txns = [e for e in loaded(path)[0] if isinstance(e, data.Transaction)]
    assert [(t.date, t.narration, t.meta["lh-hash"]) for t in txns] == [
        (date(2024, 1, 1), "amended", changed.content_hash)
    ]


async def test_awkward_descriptions_survive_the_round_trip(path: Path) -> None:
    awkward = ['say "hi"', "back\\slash", "two\nlines", "", "ünïcödé €", "trailing \\"]
    target = Counted(path)
    async with target.batch():
        for n, text in enumerate(awkward):
            await target.create(doc(f"k{n}", date(2024, 1, 1 + n), description=text))
    bean_check(path)
    txns = [e for e in loaded(path)[0] if isinstance(e, data.Transaction)]
    assert [t.narration for t in txns] == [t.replace("\n", " ") for t in awkward]
    reread = BeancountTarget(path, CHART)
    assert len(await reread.held()) == len(awkward)
    await reread.create(doc("another", date(2024, 2, 1)))  # rewrite from what was parsed
    assert [t.narration for t in loaded(path)[0] if isinstance(t, data.Transaction)][:6] == [
        t.replace("\n", " ") for t in awkward
    ]


LEGACY = """; written by ledgerhub: edits between its markers are replaced

option "operating_currency" "USD"
1970-01-01 open Assets:1200-Stripe-Clearing
1970-01-01 open Income:4000-Sales

; ledgerhub begin lh-0a29d0a0f2ce8d277f2cbe5bdea8c7d9a992670b
2024-03-05 * "payment a"
  lh-key: "lh-0a29d0a0f2ce8d277f2cbe5bdea8c7d9a992670b"
  lh-doc: "a"
  lh-kind: "payment"
  lh-hash: "7393de587978de90cd7a7f650cdbb3d52f0be5bea9b8c771e78773eda551583e"
  Assets:1200-Stripe-Clearing  10.99 USD
  Income:4000-Sales  -10.99 USD
; ledgerhub end lh-0a29d0a0f2ce8d277f2cbe5bdea8c7d9a992670b
"""


async def test_a_file_in_the_earlier_format_is_read_and_rewritten(path: Path) -> None:
    write(path, LEGACY)
    target = Counted(path)
    held = await target.held()
    assert [(h.target_id, h.content_hash) for h in held] == [
        ("lh-0a29d0a0f2ce8d277f2cbe5bdea8c7d9a992670b",
         "7393de587978de90cd7a7f650cdbb3d52f0be5bea9b8c771e78773eda551583e")
    ]  # fmt: skip
    await target.create(doc("b", date(2024, 3, 6)))
    text = text_of(path)
    assert "1970-01-01" not in text
    assert "ledgerhub begin" not in text
    assert "2024-03-05 open Assets:1200-Stripe-Clearing" in text
    assert len(await BeancountTarget(path, CHART).held()) == 2
    bean_check(path)


async def test_a_file_that_does_not_parse_is_not_overwritten(path: Path) -> None:
    write(path, LEGACY + "2024-03-06 * this line is broken\n")
    before = bytes_of(path)
    target = Counted(path)
    with pytest.raises(TargetUnavailable, match=r"acme\.beancount:\d+: the ledger file does not"):
        await target.create(doc("b", date(2024, 3, 6)))
    assert bytes_of(path) == before
