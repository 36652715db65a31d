"""Statement balances as ``balance`` documents (pure functions).

A bank statement's closing balance (a ``StatementBalance`` fact, e.g. an OFX ``LEDGERBAL``) books
nothing, so the ledger leaves it out; the accounting sync turns it into a document of kind
``balance`` for the bank account the connection books its lines to (the same account the
ledger's bank lines use: the connection's ``ledger_account``, else the account with role
``bank:<name>``, else the first bank account). Its one posting is the balance itself (account,
currency, amount), not a movement: a target that can assert a balance does (Beancount's
``balance``), the others skip the kind. Whatever the sync mode, each balance is a document of
its own, keyed ``{source}/balance:{as-of date}``.
"""

from __future__ import annotations

from hub.domain.documents import BALANCE
from hub.domain.events import RecordedEvent
from hub.domain.facts import StatementBalance
from hub.errors import Unmappable
from hub.spi.config import Account, BooksConfig
from projections.accounting.documents import Part


def balance_parts(books: BooksConfig, event: RecordedEvent) -> list[tuple[str, Part]]:
    """The ``balance`` parts ``event`` states, each with its fact key (none when its facts
    hold no statement balance, it cannot be mapped, or the tenant has no bank account)."""
    connection = books.connection(event.source)
    if connection is None:
        return []
    try:
        facts = books.map(event) or ()
    except Unmappable:
        return []
    found = []
    for fact in facts:
        if not isinstance(fact, StatementBalance):
            continue
        account = _bank_account(books, event, connection.ledger_account)
        if account is None:
            continue
        key = f"{event.source}/{fact.key}"
        amount = fact.amount
        description = f"statement balance of {event.source} at the end of {fact.business_date}"
        posting = ((account.code, amount.currency, amount.minor),)
        found.append((key, Part(key, BALANCE, fact.business_date, description, posting)))
    return found


def _bank_account(books: BooksConfig, event: RecordedEvent, chosen: str | None) -> Account | None:
    """The account the connection's bank lines are booked to (None: the chart has none)."""
    tenant = books.tenant(event.tenant)
    if chosen is not None:
        return tenant.accounts.get(chosen)
    name = event.source.split(":", 1)[-1]
    return tenant.by_role(f"bank:{name}") or tenant.first_bank()
