"""The contract every target keeps, written once and run against each implementation."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from hub.domain.documents import Document
from hub.errors import TargetRejected
from tests.accounting.targets import FACTORIES, Subject


@pytest.fixture(params=sorted(FACTORIES))
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    async with FACTORIES[request.param](tmp_path) as made:
        yield made


def _document(key: str, amount: int, currency: str = "USD") -> Document:
    return Document(
        "default",
        "contract",
        key,
        "payment",
        date(2024, 3, 1),
        f'payment "{key}"',
        (("1200", currency, amount), ("4000", currency, -amount)),
    )


async def test_create_holds_the_document_once(subject: Subject) -> None:
    doc = _document("stripe:acct/charge:ch_1", 1099)
    first = await subject.target.create(doc)
    again = await subject.target.create(doc)  # a send repeated after a crash
    assert again.target_id == first.target_id
    held = await subject.target.held()
    assert [h.target_id for h in held] == [first.target_id]
    assert held[0].content_hash == doc.content_hash
    subject.validate()


async def test_update_or_recreate_replaces_the_content(subject: Subject) -> None:
    doc = _document("stripe:acct/charge:ch_2", 2500)
    receipt = await subject.target.create(doc)
    changed = dataclasses.replace(doc, postings=(("1200", "USD", 2400), ("4000", "USD", -2400)))
    if subject.target.supports_update:
        await subject.target.update(receipt.target_id, changed)
    else:
        await subject.target.void(receipt.target_id)
        await subject.target.create(dataclasses.replace(changed, revision="2"))
    held = await subject.target.held()
    assert [h.content_hash for h in held] == [changed.content_hash]
    subject.validate()


async def test_void_removes_it_and_twice_is_harmless(subject: Subject) -> None:
    kept = await subject.target.create(_document("k/1", 100))
    gone = await subject.target.create(_document("k/2", 200))
    await subject.target.void(gone.target_id)
    await subject.target.void(gone.target_id)
    assert [h.target_id for h in await subject.target.held()] == [kept.target_id]
    subject.validate()


async def test_amounts_keep_the_currency_exponent(subject: Subject) -> None:
    for key, amount, currency in (("jpy", 1500, "JPY"), ("kwd", 12345, "KWD"), ("neg", -7, "USD")):
        await subject.target.create(_document(key, amount, currency))
    assert len(await subject.target.held()) == 3
    subject.validate()


async def test_an_unknown_account_is_rejected_and_nothing_written(subject: Subject) -> None:
    doc = dataclasses.replace(
        _document("bad", 100), postings=(("9999", "USD", 100), ("4000", "USD", -100))
    )
    with pytest.raises(TargetRejected):
        await subject.target.create(doc)
    assert await subject.target.held() == []
