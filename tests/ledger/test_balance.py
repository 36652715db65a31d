"""Every journal entry balances per currency: by construction (a property over random facts) and
by the database (the journal table's CHECK refuses a row that does not balance)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import Config
from hub.config.books import ConnectionBooks
from hub.domain.facts import (
    Adjustment,
    BankLine,
    Dispute,
    Fact,
    Fee,
    Payment,
    Payout,
    PayrollEmployee,
    PayrollRun,
    Refund,
    Sale,
    TaxLine,
)
from hub.domain.mapping import CompiledMapping
from hub.domain.money import Money
from hub.testing.postgres import Databases
from projections.ledger import Ledger
from projections.ledger.posting import book

CURRENCIES = ["USD", "EUR", "JPY", "KWD"]
TENANT = Config().books.tenant("default")
CONNECTION = ConnectionBooks("stripe:acct", "stripe", "default", CompiledMapping())
DAY = date(2024, 3, 1)
amounts = st.integers(min_value=0, max_value=10**9)
signed = st.integers(min_value=-(10**9), max_value=10**9)
currencies = st.sampled_from(CURRENCIES)


def m(minor: int, currency: str) -> Money:
    return Money(minor=minor, currency=currency)


@st.composite
def sales(draw: st.DrawFn) -> Sale:
    c = draw(currencies)
    subtotal, shipping = draw(amounts), draw(amounts)
    discounts = draw(st.integers(min_value=0, max_value=subtotal))
    taxes = draw(st.lists(amounts, max_size=3))
    included = draw(st.booleans())
    total = subtotal - discounts + shipping + (0 if included else sum(taxes))
    return Sale(
        key=f"order:{draw(st.integers(0, 50))}", business_date=DAY, order_id="o",
        status=draw(st.sampled_from(["paid", "open", "draft", "void"])), currency=c, lines=[],
        subtotal=m(subtotal, c), discounts=m(discounts, c), shipping=m(shipping, c),
        tax_lines=[TaxLine(title="t", amount=m(t, c)) for t in taxes], taxes_included=included,
        total=m(total, c),
    )  # fmt: skip


def _settled(draw: st.DrawFn, c: str) -> Money | None:
    other = draw(st.sampled_from([None, *(x for x in CURRENCIES if x != c)]))
    return None if other is None else m(draw(amounts), other)


@st.composite
def processor_facts(draw: st.DrawFn) -> Fact:
    c, key = draw(currencies), f"k:{draw(st.integers(0, 50))}"
    common: dict[str, Any] = {"key": key, "business_date": DAY, "processor": "stripe"}
    kind = draw(st.sampled_from(["payment", "refund", "dispute", "fee", "adjustment", "payout"]))
    settled = _settled(draw, c)
    fee = None if draw(st.booleans()) else m(draw(signed), (settled or m(0, c)).currency)
    if kind == "payment":
        return Payment(**common, payment_id="p", gross=m(draw(amounts), c), settled=settled,
                       fee=fee, order_ref=draw(st.sampled_from([None, "o"])))  # fmt: skip
    if kind == "refund":
        side = draw(st.sampled_from([None, "stripe"]))
        amount = draw(amounts)
        tax = m(draw(st.integers(0, amount)), c)
        return Refund(**{**common, "processor": side}, refund_id="r", amount=m(amount, c),
                      tax=tax, settled=settled if side else None, fee=fee if side else None,
                      order_ref=draw(st.sampled_from([None, "o"])),
                      status=draw(st.sampled_from(["succeeded", "failed"])))  # fmt: skip
    if kind == "dispute":
        movement = draw(st.sampled_from(["withdrawn", "reinstated", "none"]))
        return Dispute(**common, dispute_id="d", amount=m(draw(amounts), c), settled=settled,
                       fee=fee, status="x", movement=movement)  # fmt: skip
    if kind == "fee":
        return Fee(**common, fee_id="f", amount=m(draw(signed), c))
    if kind == "adjustment":
        return Adjustment(**common, adjustment_id="a", amount=m(draw(signed), c), fee=fee)
    return Payout(**common, payout_id="po", amount=m(draw(amounts), c), arrival_date=DAY,
                  status=draw(st.sampled_from(["paid", "pending", "failed"])))  # fmt: skip


@st.composite
def payroll_runs(draw: st.DrawFn) -> PayrollRun:
    c = draw(currencies)
    employees = []
    for i in range(draw(st.integers(1, 3))):
        withheld, deducted, net = draw(amounts), draw(amounts), draw(amounts)
        employees.append(PayrollEmployee(
            employee_id=str(i), gross_wages=m(withheld + deducted + net, c),
            employee_withholdings=m(withheld, c), employer_taxes=m(draw(amounts), c),
            benefits_deductions=m(deducted, c), net_pay=m(net, c)))  # fmt: skip
    sums = {
        name: m(sum(getattr(e, name).minor for e in employees), c)
        for name in ("gross_wages", "employee_withholdings", "employer_taxes",
                     "benefits_deductions", "net_pay")
    }  # fmt: skip
    return PayrollRun(key="payroll:1", business_date=DAY, run_id="1", currency=c,
                      employees=employees, **sums)  # fmt: skip


bank_lines = st.builds(
    lambda amount, c, payee: BankLine(key="l", business_date=DAY, line_id="l",
                                      amount=m(amount, c), payee=payee),
    signed, currencies, st.sampled_from([None, "GITHUB", "STRIPE PAYOUT"]),
)  # fmt: skip
facts = st.lists(st.one_of(sales(), processor_facts(), payroll_runs(), bank_lines), max_size=12)


def _rows(sequence: list[Fact]) -> list[tuple[Any, ...]]:
    rows = []
    for i, fact in enumerate(sequence):
        entry = book(fact, TENANT, CONNECTION).entry
        if entry is None:
            continue
        postings = entry.postings
        rows.append((f"e{i}", [p.account for p in postings], [p.currency for p in postings],
                     [p.amount for p in postings]))  # fmt: skip
    return rows


def _balanced(row: tuple[Any, ...]) -> bool:
    sums: dict[str, int] = {}
    for currency, amount in zip(row[2], row[3], strict=True):
        sums[currency] = sums.get(currency, 0) + amount
    return all(v == 0 for v in sums.values()) and 0 not in row[3]


@pytest.fixture(scope="module")
def journal_dsn(databases: Databases) -> Iterator[str]:
    url = asyncio.run(databases.create())
    yield url
    asyncio.run(databases.drop(url))


async def _write(dsn: str, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Insert the rows into a real journal table (in a transaction that is rolled back)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"CREATE TEMP TABLE journal ({Ledger.tables['journal']})")
            await conn.executemany(
                "INSERT INTO journal (tenant, entry_key, source, kind, business_date, "
                "description, accounts, currencies, amounts, positions, position) "
                "VALUES ('t', $1, 's', 'k', '2024-03-01', '', $2, $3, $4, '{1}', 1)",
                rows,
            )
            totals = await conn.fetch(
                "SELECT c, sum(a)::bigint AS s "
                "FROM journal, unnest(currencies, amounts) AS p(c, a) GROUP BY c"
            )
            raise _Rollback({r["c"]: r["s"] for r in totals})
    except _Rollback as done:
        return done.totals
    finally:
        await conn.close()


class _Rollback(Exception):
    def __init__(self, totals: dict[str, int]) -> None:
        self.totals = totals


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=facts)
def test_any_fact_sequence_books_balanced_entries_the_database_accepts(
    journal_dsn: str, sequence: list[Fact]
) -> None:
    rows = _rows(sequence)
    assert all(_balanced(row) for row in rows)
    totals = asyncio.run(_write(journal_dsn, rows))
    assert all(total == 0 for total in totals.values()), totals


@pytest.mark.parametrize(
    ("accounts", "currencies", "amounts"),
    [
        (["1000", "4000"], ["USD", "USD"], [100, -99]),  # off by a cent
        (["1000", "4000"], ["USD", "EUR"], [100, -100]),  # balanced in sum, not per currency
        (["1000", "4000", "6000"], ["USD", "USD", "USD"], [100, -100, 0]),  # a zero posting
        (["1000"], ["USD"], [0]),  # a single posting
    ],
)
def test_the_database_refuses_an_unbalanced_entry(
    journal_dsn: str, accounts: list[str], currencies: list[str], amounts: list[int]
) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        asyncio.run(_write(journal_dsn, [("bad", accounts, currencies, amounts)]))
