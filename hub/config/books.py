"""The books' configuration: charts of accounts, categorization rules, connection mappings.

Read from the ``LEDGERHUB_CONFIG`` TOML file (the same file ``hub.config`` loads)::

    [tenants.default]
    timezone = "America/New_York"

    [[tenants.default.ledger.accounts]]      # added to (or replacing by code) the default chart
    code = "6500"
    name = "Software"
    type = "expense"

    [[tenants.default.ledger.rules]]         # bank lines, first match wins
    payee = "(?i)github|adobe"
    account = "6500"

    [[tenants.default.ledger.rules]]
    payee = "(?i)^stripe|shopify"
    action = "ignore"                        # a payout deposit, booked from the payout itself

    [[connections]]
    id = "shopify:acme-store"
    connector = "shopify"
    payout_account = "1000"                  # where its payouts land (default: first bank account)
    [connections.mapping.sale]
    status = { from = "order.financial_status", transform = "map",
               values = { paid = "paid", pending = "draft" }, default = "draft" }

A mistake is a ``ConfigError`` reading ``FILE:LINE: where: what is wrong``.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.domain.events import RecordedEvent
from hub.domain.facts import Fact
from hub.domain.mapping import CompiledMapping, MappingError
from hub.domain.toml_lines import Location, line_of
from hub.errors import ConfigError, Unmappable
from hub.spi.mapper import FactMapper, MapContext, SourceEvent
from hub.spi.registry import connectors

T = TypeVar("T")
MEMO_SIZE = 8192
"""How many results ``BooksConfig.remember`` keeps (two per event: its facts and its bookings,
so the last ~4,000 events: a few batches, however long the log)."""

AccountType = Literal["asset", "liability", "equity", "income", "expense"]


class Account(BaseModel):
    """An account of the chart. ``role`` says what the ledger uses it for (see ``ROLES``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,19}$")
    name: str = Field(min_length=1)
    type: AccountType
    role: str | None = Field(default=None, pattern=r"^[a-z_]+(:[A-Za-z0-9_.\-]+)?$")


ROLES = {
    "bank": "a bank account (role bank:<name>); payouts and bank lines post to it",
    "clearing": "a processor's clearing account (role clearing:<processor>)",
    "receivable": "what customers owe for orders",
    "revenue": "sales",
    "shipping": "shipping charged to customers",
    "discounts": "discounts given (contra revenue)",
    "refunds": "refunds given (contra revenue)",
    "sales_tax": "sales tax collected, owed to the tax authority",
    "fees": "processor fees",
    "disputes": "chargebacks",
    "adjustments": "other processor balance adjustments",
    "reserves": "funds a processor holds back from payouts (still the merchant's money)",
    "fx": "currency conversion (one balancing account per currency pair leg)",
    "wages": "gross wages",
    "payroll_taxes": "employer payroll taxes",
    "payroll_liabilities": "withholdings, deductions and employer taxes owed",
    "suspense": "bank lines no rule categorizes yet",
    "unapplied": "payments naming an order the log does not hold yet (a customer deposit)",
    "inventory": "stock on hand",
    "cogs": "cost of goods sold",
}
"""Role names the ledger posts to, and what each account holds."""

DEFAULT_CHART = (
    Account(code="1000", name="Checking", type="asset", role="bank:checking"),
    Account(code="1100", name="Accounts receivable", type="asset", role="receivable"),
    Account(code="1200", name="Stripe clearing", type="asset", role="clearing:stripe"),
    Account(code="1210", name="Shopify Payments clearing", type="asset", role="clearing:shopify"),
    Account(code="1250", name="Processor reserves", type="asset", role="reserves"),
    Account(code="1300", name="Inventory", type="asset", role="inventory"),
    Account(code="1900", name="Currency conversion", type="asset", role="fx"),
    Account(code="2100", name="Sales tax payable", type="liability", role="sales_tax"),
    Account(code="2200", name="Payroll liabilities", type="liability", role="payroll_liabilities"),
    Account(code="2300", name="Unapplied payments", type="liability", role="unapplied"),
    Account(code="2900", name="Suspense", type="liability", role="suspense"),
    Account(code="4000", name="Sales", type="income", role="revenue"),
    Account(code="4100", name="Shipping income", type="income", role="shipping"),
    Account(code="4800", name="Discounts", type="income", role="discounts"),
    Account(code="4900", name="Refunds", type="income", role="refunds"),
    Account(code="5000", name="Cost of goods sold", type="expense", role="cogs"),
    Account(code="6000", name="Payment processing fees", type="expense", role="fees"),
    Account(code="6010", name="Chargebacks", type="expense", role="disputes"),
    Account(code="6020", name="Processor adjustments", type="expense", role="adjustments"),
    Account(code="6100", name="Wages", type="expense", role="wages"),
    Account(code="6110", name="Payroll taxes", type="expense", role="payroll_taxes"),
)
"""The chart every tenant starts with; ``ledger.accounts`` adds accounts or replaces by code."""


class Rule(BaseModel):
    """A bank-line categorization rule: the first whose ``payee`` regex matches applies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payee: str
    account: str | None = None
    action: Literal["book", "ignore"] = "book"
    name: str | None = None

    @field_validator("payee")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    def matches(self, payee: str) -> bool:
        """Whether this rule applies to a line with ``payee``."""
        return re.search(self.payee, payee) is not None

    @property
    def label(self) -> str:
        """How the rule is named in the books."""
        return self.name or self.payee


class _LedgerSection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: list[Account] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True)
class TenantBooks:
    """One tenant's time zone, chart (by code) and rules."""

    name: str
    timezone: ZoneInfo
    accounts: Mapping[str, Account]
    rules: tuple[Rule, ...] = ()

    def by_role(self, role: str) -> Account | None:
        """The account with ``role`` (the lowest code if several), or None."""
        return self._roles.get(role)

    def first_bank(self) -> Account | None:
        """The bank account with the lowest code, or None."""
        return self._first_bank

    @cached_property
    def _roles(self) -> dict[str, Account]:
        # asked several times for every event booked: indexed once, not sorted per call
        found: dict[str, Account] = {}
        for account in sorted(self.accounts.values(), key=_code):
            if account.role is not None:
                found.setdefault(account.role, account)
        return found

    @cached_property
    def _first_bank(self) -> Account | None:
        banks = [a for a in self.accounts.values() if (a.role or "").startswith("bank:")]
        return min(banks, key=_code) if banks else None


def _code(account: Account) -> str:
    return account.code


@dataclass(frozen=True)
class ConnectionBooks:
    """What the ledger needs of one connection."""

    id: str
    connector: str
    tenant: str
    mapping: CompiledMapping
    ledger_account: str | None = None
    payout_account: str | None = None


def _bare(error: Exception) -> Exception:
    """``error`` without its traceback, cause or context. A remembered exception that kept
    them would keep their frames, and every local of those frames, in reference cycles: in a
    worker booking unmappable events that was tens of thousands of objects a second for the
    cyclic collector, whose full collections stopped the worker for 100-300 ms every 3 s."""
    error.__traceback__ = None
    error.__cause__ = error.__context__ = None
    return error


@dataclass(frozen=True)
class _Raised:
    """What a remembered computation raised."""

    error: Exception


@dataclass(frozen=True)
class BooksConfig:
    """Every tenant's books and connection's mapping; defaults for anything not configured."""

    tenants: Mapping[str, TenantBooks] = field(default_factory=dict)
    connections: Mapping[str, ConnectionBooks] = field(default_factory=dict)
    mappers: Mapping[str, FactMapper] = field(default_factory=dict)
    _defaults: dict[str, ConnectionBooks | TenantBooks] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Books made from defaults, once each: this is asked for every event a projection
    handles, and compiling a connector's default mapping cost more than mapping the event."""

    _memo: OrderedDict[Hashable, Any] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    def remember(
        self,
        key: Hashable,
        compute: Callable[[], T],
        errors: tuple[type[Exception], ...] = (Unmappable,),
    ) -> T:
        """``compute()`` for ``key``, computed once while it is among the last
        ``MEMO_SIZE`` keys asked for. Only for a pure function of this configuration and the
        key: the projections of one worker map (and book) the same events, each in its own
        runner at about the same place in the log, and mapping is most of their time per event.
        An exception of ``errors`` it raises is remembered and raised again."""
        if key in self._memo:
            self._memo.move_to_end(key)
            found = self._memo[key]
        else:
            try:
                found = compute()
            except errors as exc:
                found = _Raised(_bare(exc))
            self._memo[key] = found
            if len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        if isinstance(found, _Raised):
            raise copy.copy(found.error)
        return cast("T", found)

    def map(self, event: RecordedEvent) -> tuple[Fact, ...] | None:
        """``event``'s canonical facts through its connection's mapper (None when no installed
        connector maps its source, or its mapper does not map its type); ``Unmappable`` when it
        cannot be mapped. Remembered (``remember``)."""
        return self.remember(("map", event.id), lambda: self._map(event))

    def _map(self, event: RecordedEvent) -> tuple[Fact, ...] | None:
        connection = self.connection(event.source)
        if connection is None:
            return None
        context = MapContext(connection.mapping, self.tenant(event.tenant).timezone)
        source = SourceEvent(
            event.type, event.source, event.external_id, event.occurred_at, event.data
        )
        facts = self.mappers[connection.connector].map(source, context)
        return None if facts is None else tuple(facts)

    def tenant(self, name: str) -> TenantBooks:
        """The tenant's books (the default chart in UTC when the file does not name it)."""
        configured = self.tenants.get(name)
        if configured is not None:
            return configured
        made = self._defaults.get(f"tenant:{name}")
        if not isinstance(made, TenantBooks):
            made = self._defaults[f"tenant:{name}"] = _tenant(name, {}, None)
        return made

    def connection(self, source: str) -> ConnectionBooks | None:
        """The connection an event's ``source`` names, configured or not (None when no
        installed connector has a mapper for it)."""
        configured = self.connections.get(source)
        if configured is not None:
            return configured
        made = self._defaults.get(f"connection:{source}")
        if isinstance(made, ConnectionBooks):
            return made
        connector = source.split(":", 1)[0]
        mapper = self.mappers.get(connector)
        if mapper is None:
            return None
        made = self._defaults[f"connection:{source}"] = ConnectionBooks(
            source, connector, "", mapper.compile()
        )
        return made


def mappers() -> dict[str, FactMapper]:
    """The mapper of every installed connector that has one."""
    return {
        name: cls.mapper for name, cls in connectors().items() if isinstance(cls.mapper, FactMapper)
    }


class _Located(Exception):
    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def _tenant(name: str, raw: Mapping[str, Any], ledger: _LedgerSection | None) -> TenantBooks:
    zone_name = str(raw.get("timezone", "UTC"))
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _Located(("tenants", name, "timezone"), f"unknown time zone {zone_name!r}") from exc
    accounts = {a.code: a for a in DEFAULT_CHART}
    for account in ledger.accounts if ledger else []:
        accounts[account.code] = account
    return TenantBooks(name, zone, accounts, tuple(ledger.rules) if ledger else ())


def _ledger(name: str, raw: Any) -> _LedgerSection:
    try:
        return _LedgerSection.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Located(("tenants", name, "ledger", *first["loc"]), first["msg"]) from exc


def _check_tenant(books: TenantBooks) -> None:
    for index, rule in enumerate(books.rules):
        where = ("tenants", books.name, "ledger", "rules", index)
        if rule.action == "book" and rule.account not in books.accounts:
            raise _Located(
                (*where, "account"), f"account {rule.account!r} is not in the chart of accounts"
            )
    for role in ("receivable", "revenue", "sales_tax", "fees", "suspense"):
        if books.by_role(role) is None:
            raise _Located(("tenants", books.name, "ledger"), f"no account has role {role!r}")


def _connection(
    index: int, raw: Mapping[str, Any], tenants: Mapping[str, TenantBooks], found: dict[str, Any]
) -> ConnectionBooks | None:
    where: Location = ("connections", index)
    connector = str(raw.get("connector", ""))
    mapper = found.get(connector)
    overrides = raw.get("mapping") or {}
    if mapper is None:
        if overrides:
            raise _Located(
                (*where, "mapping"), f"connector {connector!r} has no mapper to configure"
            )
        return None
    try:
        compiled = mapper.compile(overrides)
    except MappingError as exc:
        raise _Located((*where, "mapping", *exc.location), exc.message) from exc
    tenant = str(raw.get("tenant", "default"))
    books = tenants.get(tenant) or _tenant(tenant, {}, None)
    for key in ("ledger_account", "payout_account"):
        code = raw.get(key)
        if code is not None and str(code) not in books.accounts:
            raise _Located(
                (*where, key), f"account {code!r} is not in tenant {tenant!r}'s chart of accounts"
            )
    return ConnectionBooks(
        id=str(raw["id"]),
        connector=connector,
        tenant=tenant,
        mapping=compiled,
        ledger_account=None if raw.get("ledger_account") is None else str(raw["ledger_account"]),
        payout_account=None if raw.get("payout_account") is None else str(raw["payout_account"]),
    )


def books_from_toml(path: Path, text: str, raw: Mapping[str, Any]) -> BooksConfig:
    """The books' part of an already parsed config file; ``ConfigError`` at ``FILE:LINE``."""
    found = mappers()
    try:
        tenants: dict[str, TenantBooks] = {}
        for name, section in (raw.get("tenants") or {}).items():
            books = _tenant(name, section, _ledger(name, section.get("ledger")))
            _check_tenant(books)
            tenants[name] = books
        connections: dict[str, ConnectionBooks] = {}
        for index, section in enumerate(raw.get("connections") or []):
            connection = _connection(index, section, tenants, found)
            if connection is not None:
                connections[connection.id] = connection
    except _Located as exc:
        where = ".".join(str(p) for p in exc.location)
        raise ConfigError(f"{path}:{line_of(text, exc.location)}: {where}: {exc.message}") from exc
    return BooksConfig(tenants, connections, found)
