"""Statement balances in the Beancount file: a ``balance`` directive (the day after the as-of
date) where the books agree with the statement, which bean-check then checks; a ``note`` stating
the statement's balance and the difference where they do not, so the file still loads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from beancount import loader
from beancount.core import data
from beancount.core.amount import Amount

from connectors.beancount import BeancountTarget
from hub.domain.documents import BALANCE, Document
from tests.accounting.targets import CHART, bean_check

CHECKING = "Assets:1000-Checking"


def deposit(key: str, day: date, amount: int) -> Document:
    """``amount`` minor units from Sales (4000) into Checking (1000)."""
    return Document("default", "beancount", key, "journal", day, f"deposit {key}",
                    (("1000", "USD", amount), ("4000", "USD", -amount)))  # fmt: skip


def statement(day: date, amount: int) -> Document:
    """The statement's closing balance of Checking at the end of ``day``."""
    key, postings = f"bank:checking/balance:{day}", (("1000", "USD", amount),)
    return Document("default", "beancount", key, BALANCE, day, f"balance at {day}", postings)


def directives(path: Path) -> list[data.Directive]:
    entries, errors, _ = loader.load_file(str(path))
    assert errors == [], errors
    return [e for e in entries if isinstance(e, data.Balance | data.Note)]


async def test_an_agreeing_balance_is_asserted_the_next_day(tmp_path: Path) -> None:
    path = tmp_path / "acme.beancount"
    target = BeancountTarget(path, CHART)
    async with target.batch():
        await target.create(deposit("a", date(2026, 10, 1), 10000))
        await target.create(deposit("b", date(2026, 10, 15), 2550))
        await target.create(statement(date(2026, 10, 15), 12550))
        await target.create(deposit("c", date(2026, 10, 16), 99))  # after: not counted
    bean_check(path)
    (balance,) = directives(path)
    assert isinstance(balance, data.Balance)
    assert balance.date == date(2026, 10, 16)
    assert balance.account == CHECKING
    assert balance.amount == Amount(Decimal("125.50"), "USD")
    assert balance.meta["lh-kind"] == BALANCE


async def test_a_disagreeing_balance_is_a_note_with_the_difference(tmp_path: Path) -> None:
    path = tmp_path / "acme.beancount"
    target = BeancountTarget(path, CHART)
    async with target.batch():
        await target.create(deposit("a", date(2026, 10, 1), 10000))
        await target.create(statement(date(2026, 10, 31), 5302))
    bean_check(path)  # a failing assertion would fail it
    (note,) = directives(path)
    assert isinstance(note, data.Note)
    assert note.date == date(2026, 11, 1)
    assert note.account == CHECKING
    assert note.meta["lh-statement"] == Amount(Decimal("53.02"), "USD")
    assert note.meta["lh-difference"] == Amount(Decimal("46.98"), "USD")
    assert "53.02 USD" in note.comment
    assert "100.00 USD" in note.comment
    assert "46.98 USD more" in note.comment


async def test_a_later_document_that_makes_the_books_agree_turns_the_note_into_a_balance(
    tmp_path: Path,
) -> None:
    path = tmp_path / "acme.beancount"
    target = BeancountTarget(path, CHART)
    await target.create(statement(date(2026, 10, 31), 10000))
    assert isinstance(directives(path)[0], data.Note)  # nothing booked yet
    await target.create(deposit("a", date(2026, 10, 30), 10000))
    (balance,) = directives(path)
    assert isinstance(balance, data.Balance)
    bean_check(path)


async def test_a_balance_read_back_from_the_file_is_the_document_held(tmp_path: Path) -> None:
    path = tmp_path / "acme.beancount"
    first = BeancountTarget(path, CHART)
    agreeing, disagreeing = statement(date(2026, 10, 1), 10000), statement(date(2026, 10, 2), 1)
    await first.create(deposit("a", date(2026, 10, 1), 10000))
    await first.create(agreeing)
    await first.create(disagreeing)
    written = path.read_text()
    again = BeancountTarget(path, CHART)  # another process: reads the file
    held = {h.idempotency_key: h.content_hash for h in await again.held()}
    assert held[agreeing.idempotency_key] == agreeing.content_hash
    assert held[disagreeing.idempotency_key] == disagreeing.content_hash
    # converging calls change nothing: the same file, byte for byte
    await again.update(agreeing.idempotency_key, agreeing)
    await again.update(disagreeing.idempotency_key, disagreeing)
    await again.create(agreeing)
    await again.flush()
    assert path.read_text() == written
    await again.void(disagreeing.idempotency_key)
    assert [type(d) for d in directives(path)] == [data.Balance]
