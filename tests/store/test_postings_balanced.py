"""``ledgerhub.postings_balanced``, the CHECK on every journal and document row: its PL/pgSQL
form (migration 0023) answers as the set-based definition of migration 0008 did, for the
postings ledgerhub writes and for the odd arrays it never writes."""

from __future__ import annotations

import random

import asyncpg
import pytest

pytestmark = pytest.mark.store

# the definition of migration 0008, as a query over $1 (currencies) and $2 (amounts)
_REFERENCE = """
SELECT cardinality($1::text[]) = cardinality($2::bigint[])
   AND NOT EXISTS (
       SELECT 1 FROM unnest($1::text[], $2::bigint[]) AS p(currency, amount)
       GROUP BY p.currency HAVING sum(p.amount) <> 0
   )
   AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[]) AS a(amount) WHERE a.amount = 0
                   OR a.amount IS NULL)
"""
_BIG = 2**63 - 1


def _cases(seed: int, count: int) -> list[tuple[list[str | None], list[int | None]]]:
    """Postings as a ledger writes them (balanced, one or two currencies), broken ones (off
    by one, a zero, a NULL, arrays of different lengths) and amounts near the bigint limits."""
    rnd = random.Random(seed)
    cases: list[tuple[list[str | None], list[int | None]]] = [
        ([], []),
        (["USD"], [1]),
        (["USD", "USD"], [_BIG, _BIG]),
        (["USD", "USD", "USD"], [_BIG, 1, -_BIG - 1]),
        ([None, None], [5, -5]),
        (["USD", None], [5, -5]),
    ]
    for _ in range(count):
        currencies: list[str | None] = []
        legs: list[int] = []
        for currency in rnd.sample(["USD", "EUR", "JPY", None], rnd.randint(1, 2)):
            some = [rnd.choice([1, -1]) * rnd.randint(1, 10**6) for _ in range(rnd.randint(1, 4))]
            some.append(-sum(some) or 7)
            currencies += [currency] * len(some)
            legs += some
        match rnd.randint(0, 5):
            case 0:
                legs[rnd.randrange(len(legs))] += rnd.choice([1, -1])
        amounts: list[int | None] = list(legs)
        match rnd.randint(0, 4):
            case 1:
                amounts[rnd.randrange(len(amounts))] = rnd.choice([0, None])
            case 2:
                currencies = currencies[:-1]
            case 3:
                i = rnd.randrange(len(currencies))
                currencies[i] = "GBP" if currencies[i] != "GBP" else "USD"
        order = list(range(len(amounts)))
        rnd.shuffle(order)
        if len(currencies) == len(amounts):
            currencies = [currencies[i] for i in order]
        amounts = [amounts[i] for i in order]
        cases.append((currencies, amounts))
    return cases


async def test_it_answers_as_the_set_based_definition(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        answers = []
        for currencies, amounts in _cases(seed=23, count=1500):
            got = await conn.fetchval(
                "SELECT ledgerhub.postings_balanced($1::text[], $2::bigint[])", currencies, amounts
            )
            expected = await conn.fetchval(_REFERENCE, currencies, amounts)
            assert got == expected, (currencies, amounts)
            answers.append(got)
        assert 300 < sum(answers) < len(answers) - 300  # both answers, many times each
    finally:
        await conn.close()


async def test_arrays_not_from_one_take_the_set_based_definition(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for currencies, amounts, expected in [
            ("[0:1]={USD,USD}", "[0:1]={5,-5}", True),
            ("[0:1]={USD,EUR}", "[0:1]={5,-5}", False),
            ("{USD,USD}", "[3:4]={5,-5}", True),
            ("{{USD,USD},{EUR,EUR}}", "{{5,-5},{7,-7}}", True),
            ("{{USD,USD},{EUR,EUR}}", "{{5,-5},{7,-6}}", False),
        ]:
            # the arrays as literals (a Python list is always one-dimensional from 1)
            query = "SELECT ledgerhub.postings_balanced($1::text::text[], $2::text::bigint[])"
            assert await conn.fetchval(query, currencies, amounts) is expected, amounts
            reference = _REFERENCE.replace("$1::text[]", "$1::text::text[]").replace(
                "$2::bigint[]", "$2::text::bigint[]"
            )
            assert await conn.fetchval(reference, currencies, amounts) is expected, amounts
    finally:
        await conn.close()


async def test_a_table_with_the_check_refuses_an_unbalanced_row(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TEMP TABLE entries (currencies text[] NOT NULL, amounts bigint[] NOT NULL, "
            "CHECK (ledgerhub.postings_balanced(currencies, amounts)))"
        )
        insert = "INSERT INTO entries VALUES ($1, $2)"
        await conn.executemany(insert, [(["USD", "USD"], [500, -500])] * 3)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.executemany(insert, [(["USD", "USD"], [500, -500]), (["USD"], [500])])
        assert await conn.fetchval("SELECT count(*) FROM entries") == 3
    finally:
        await conn.close()
