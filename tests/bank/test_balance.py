"""An OFX statement's closing balance (``LEDGERBAL``): one ``bank.balance`` record keyed by
account and as-of date, mapped to a ``StatementBalance`` fact; a broken one names its line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.bank.importer import BankImporter
from connectors.bank.lines import BankFileError
from connectors.bank.mapping import BankMapper
from hub.domain.facts import StatementBalance
from hub.domain.money import Money
from hub.spi.importer import ImportOptions
from hub.spi.mapper import MapContext, SourceEvent

OFX = Path(__file__).parent.parent / "fixtures" / "ofx"


def records(text: bytes) -> list[tuple[str, str, dict[str, object], str]]:
    read = BankImporter().read(
        "s.ofx", text, file_format="ofx", options=ImportOptions(account="checking")
    )
    return [(r.type, r.external_id, r.data, r.where) for r in read]


def test_the_closing_balance_is_one_record_after_the_lines() -> None:
    found = records((OFX / "checking.ofx").read_bytes())
    assert [kind for kind, *_ in found] == ["bank.line"] * 3 + ["bank.balance"]
    _, external_id, data, where = found[-1]
    assert external_id == "balance:checking:2013-05-25"
    assert data == {"account": "checking", "date": "2013-05-25", "amount_minor": 10099,
                    "currency": "USD", "format": "ofx"}  # fmt: skip
    text = (OFX / "checking.ofx").read_text(encoding="latin-1").splitlines()
    assert "<LEDGERBAL>" in text[int(where.removeprefix("line ")) - 1]


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        (b"lots", "LEDGERBAL: BALAMT 'lots' is not a decimal amount"),
        (b"100.999", "LEDGERBAL: BALAMT '100.999' has more than 2 decimal places"),
    ],
)
def test_a_broken_closing_balance_names_its_line(written: bytes, reason: str) -> None:
    text = (OFX / "checking.ofx").read_bytes().replace(b"<BALAMT>100.99", b"<BALAMT>" + written)
    with pytest.raises(BankFileError) as caught:
        records(text)
    line = text[: text.index(b"<LEDGERBAL>")].count(b"\n") + 1
    assert str(caught.value).startswith(f"s.ofx:line {line}: {reason}")


def test_a_bad_as_of_date_names_its_line() -> None:
    text = (
        (OFX / "checking.ofx")
        .read_bytes()
        .replace(b"<DTASOF>20130525225731.258", b"<DTASOF>20131345", 1)
    )
    with pytest.raises(BankFileError, match=r"LEDGERBAL: DTASOF '20131345' is not a valid date"):
        records(text)


def test_a_balance_event_maps_to_a_statement_balance() -> None:
    event = SourceEvent(
        "bank.balance",
        "bank:checking",
        "balance:checking:2013-05-25",
        datetime(2013, 5, 26, 3, 57, tzinfo=UTC),
        {"account": "checking", "date": "2013-05-25", "amount_minor": -10099,
         "currency": "USD", "format": "ofx"},
    )  # fmt: skip
    mapper = BankMapper()
    facts = mapper.map(event, MapContext(mapper.compile(), ZoneInfo("America/New_York")))
    assert facts is not None
    (fact,) = facts
    assert fact == StatementBalance(
        key="balance:2013-05-25",
        business_date=date(2013, 5, 25),
        amount=Money(minor=-10099, currency="USD"),
        account="checking",
    )
    assert fact.informational  # the ledger books nothing of it
