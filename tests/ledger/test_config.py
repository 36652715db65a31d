"""Mapping changes and rebuilds, and a broken config refused at start with its line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from hub.config import load_config
from hub.errors import ConfigError
from hub.store import EventStore
from tests.ledger.harness import Books, ledger_running, new, sample

ROOT = Path(__file__).resolve().parents[2]
SHOP = "shopify:acme-store"
SEED = """
[tenants.default]
timezone = "America/New_York"

[[connections]]
id = "shopify:acme-store"
connector = "shopify"
tenant = "default"

[connections.mapping.sale.status]
from = "order.financial_status"
transform = "map"
default = "draft"
values = { paid = "paid", pending = "draft" }
"""
BROKEN = SEED.replace('transform = "map"', 'transform = "mapp"')
BROKEN_LINE = 12


async def _cli(dsn: str, config: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(LEDGERHUB_DSN=dsn, LEDGERHUB_CONFIG=str(config), PYTHONPATH=str(ROOT),
               LEDGERHUB_POLL_INTERVAL="0.1", LEDGERHUB_LEASE_TTL="2")  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_mapping_change_and_a_rebuild_give_the_new_books_then_identical_rows(
    dsn: str, store: EventStore, books: Books, config: Path
) -> None:
    order = sample("shopify", "shopify.orders.create")
    pending = {**order, "id": 1001, "name": "#1001", "financial_status": "pending"}
    paid = {**order, "id": 1002, "name": "#1002", "financial_status": "paid"}
    async with ledger_running(dsn):
        await store.append(
            [
                new(SHOP, "o-1001", "shopify.orders.create", pending, order["created_at"]),
                new(SHOP, "o-1002", "shopify.orders.paid", paid, order["created_at"]),
            ]
        )
        await books.settle()
        before = await books.balances()
        assert await books.entry(f"{SHOP}/order:1001") is not None
        config.write_text(SEED)  # noqa: ASYNC240 - pending orders are drafts from now on: not booked
        code, _, err = await _cli(dsn, config, "rebuild", "ledger")
        assert code == 0, err
        after = await books.balances()
        first = await books.journal_rows()
        code, _, err = await _cli(dsn, config, "rebuild", "ledger")
        assert code == 0, err
        again = await books.journal_rows()
    total = int(order["total_price"].replace(".", ""))
    assert before[("1100", "USD")] == 2 * total  # both orders owed (default: pending is open)
    assert after[("1100", "USD")] == total  # only the paid one
    dropped = await books.entry(f"{SHOP}/order:1001")
    assert dropped is not None
    assert list(dropped["accounts"]) == []  # kept as "books nothing", with its positions
    assert first == again
    assert first  # rows were compared, not two empty lists


async def test_a_broken_mapping_is_refused_at_start_with_its_line(
    dsn: str, books: Books, config: Path
) -> None:
    config.write_text(BROKEN)  # noqa: ASYNC240
    assert BROKEN.splitlines()[BROKEN_LINE - 1] == 'transform = "mapp"'
    where = "connections.0.mapping.sale.status.transform"
    expected = f"{config}:{BROKEN_LINE}: {where}: unknown transform 'mapp'"
    with pytest.raises(ConfigError) as caught:
        load_config(config)  # what `ledgerhub serve` does first
    assert str(caught.value).startswith(expected)
    for command in (("worker",), ("rebuild", "ledger")):
        code, _, err = await _cli(dsn, config, *command)
        assert code == 1, command
        assert expected in err, err
    queued = await books.conn.fetchval("SELECT count(*) FROM ledgerhub.projection_jobs")
    assert queued == 0


def _rule(payee: str, account: str) -> str:
    return f'{SEED}\n[[tenants.default.ledger.rules]]\npayee = "{payee}"\naccount = "{account}"\n'


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (SEED.replace("order.financial_status", "order..financial_status"), 11, "bad path"),
        (SEED.replace("mapping.sale.status]", "mapping.sales.status]"), 10, "unknown kind"),
        (SEED.replace("mapping.sale.status]", "mapping.sale.state]"), 10, "unknown field"),
        (_rule("(?i)github", "9999"), 18, "not in the chart"),
        (_rule("(unclosed", "4000"), 17, "regular expression"),
        (SEED.replace('tenant = "default"', 'tenant = "default"\npayout_account = "77"'), 9, "77"),
    ],
)
def test_config_mistakes_name_their_line(config: Path, text: str, line: int, message: str) -> None:
    config.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(config)
    assert str(caught.value).startswith(f"{config}:{line}: ")
