"""The demo: a month of a small shop delivered the way it reaches a real hub, then its books.

``run_demo`` writes the demo's own config (``demo.toml`` under ``LEDGERHUB_HOME``: a New York tea
shop with Stripe, Shopify, a checking account and Gusto, its chart additions and bank rules,
syncing per payout to Beancount), starts the hub's HTTP API on 127.0.0.1 (an ephemeral port)
with every installed projection running, and delivers October 2026 (``hub.usecases.demo_month``)
twice, as providers redeliver:

- Stripe and Shopify webhooks, each signed with the connection's secret by the connector's own
  verifier and POSTed to ``/v1/webhooks/{connector}/{name}``;
- what a pull would store (Stripe and Shopify Payments balance transactions and payouts, the
  Gusto payroll), POSTed to ``/v1/events`` with an ``ingest:*`` key;
- the bank statements (two OFX files, each with its closing balance), imported by the use case
  ``ledgerhub import bank`` runs.

It then waits (on the projections' positions, bounded) until the books have caught up, sends the
documents to the tenant's target (a Beancount file, checked by Beancount's own loader), waits
again, reads the trial balance, payouts, exceptions and clearing tie-out back through the API
with a ``read`` key (so nothing here imports a projection), and verifies the hash chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hub.api.context import HubContext
from hub.api.server import open_hub, serving
from hub.config import Config, Settings, load_config
from hub.domain.events import NewEvent
from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.domain.money import to_minor
from hub.errors import FatalError, LedgerhubError, StoreUnavailable
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.registry import connector, discover, document_source, select
from hub.store import EventStore
from hub.store.keys import KeyStore
from hub.store.projections import ProjectionStore
from hub.sync.sender import Sender
from hub.sync.tenants import open_targets
from hub.usecases import demo_month
from hub.usecases.demo_month import Month, build_month
from hub.usecases.file_import import (
    import_events,
    importer_for,
    read_statement,
    recorded,
    statement_events,
)
from hub.usecases.verify import ChainReport, verify_chain

TENANT = "default"
DEMO_CONFIG = """\
# Written by `ledgerhub demo` (rewritten on each run): the demo's tea shop. See README.md.
[tenants.default]
timezone = "America/New_York"
currency = "USD"
sync = {{ target = "beancount", mode = "per_payout" }}

[[tenants.default.ledger.accounts]]
code = "3000"
name = "Owner capital"
type = "equity"

[[tenants.default.ledger.accounts]]
code = "6200"
name = "Rent"
type = "expense"

[[tenants.default.ledger.accounts]]
code = "6300"
name = "Postage"
type = "expense"

[[tenants.default.ledger.accounts]]
code = "6400"
name = "Software"
type = "expense"

[[tenants.default.ledger.accounts]]
code = "6500"
name = "Utilities"
type = "expense"

[[tenants.default.ledger.rules]]
payee = "(?i)^(stripe|shopify)"
action = "ignore"                 # a payout's deposit: the payout books it
name = "processor payout"

[[tenants.default.ledger.rules]]
payee = "(?i)^gusto net"
action = "ignore"                 # the payroll run books its net pay
name = "payroll net pay"

[[tenants.default.ledger.rules]]
payee = "(?i)^gusto tax"
account = "2200"
name = "payroll taxes and deductions remitted"

[[tenants.default.ledger.rules]]
payee = "(?i)owner capital"
account = "3000"

[[tenants.default.ledger.rules]]
payee = "(?i)properties"
account = "6200"

[[tenants.default.ledger.rules]]
payee = "(?i)usps"
account = "6300"

[[tenants.default.ledger.rules]]
payee = "(?i)google"
account = "6400"

[[tenants.default.ledger.rules]]
payee = "(?i)con edison"
account = "6500"

[[tenants.default.ledger.rules]]
payee = "(?i)tea importers"
account = "5000"

[[connections]]
id = "{stripe}"
connector = "stripe"
tenant = "default"
webhook_secret = "file:secrets/stripe.key"

[[connections]]
id = "{shopify}"
connector = "shopify"
tenant = "default"
webhook_secret = "file:secrets/shopify.key"
payout_account = "1000"

[[connections]]
id = "{bank}"
connector = "bank"
tenant = "default"
ledger_account = "1000"

[[connections]]
id = "{payroll}"
connector = "payroll"
tenant = "default"
"""

DEMO_SETTINGS = RuntimeSettings(poll_interval=0.2)
KEY_LIFETIME = timedelta(days=1)


def sample_events() -> list[NewEvent]:
    """A small set of Stripe and Shopify events as the connectors store them (tests use it)."""
    raw = resources.files("hub.usecases").joinpath("samples", "demo_events.json").read_bytes()
    return [
        NewEvent(
            source=item["source"],
            external_id=item["external_id"],
            type=item["type"],
            occurred_at=datetime.fromisoformat(item["occurred_at"]),
            data=item["data"],
            meta={"demo": True},
        )
        for item in orjson.loads(raw)["events"]
    ]


@dataclass(frozen=True)
class SyncReport:
    """One sync run of the demo."""

    target: str
    location: str
    sent: int
    failed: int
    problems: list[str]
    """What Beancount's own loader (the code behind ``bean-check``) says of the file."""
    statement_balances: list[str] = field(default_factory=list)
    """Each bank statement balance the file holds, in words: asserted (a ``balance``) where
    the books agree, noted (a ``note`` with the difference) where they do not."""


@dataclass
class Delivered:
    """What one way in delivered, over both rounds."""

    how: str
    what: str
    appended: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class DemoKeys:
    """The keys the demo created (valid for a day): shown by ``--serve``."""

    ingest: str
    read: str
    operate: str


@dataclass
class DemoReport:
    """What the demo did and what the books say (read back through the API)."""

    config: str
    url: str
    keys: DemoKeys
    statement: str
    """The month's last bank statement (its path)."""
    statement_balance_minor: int
    """The last bank statement's closing balance."""
    delivered: list[Delivered]
    head: int = 0
    trial_balance: dict[str, Any] = field(default_factory=dict)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    clearing: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    """Events the ledger kept but could not book (none, when the samples are right)."""
    syncs: list[SyncReport] = field(default_factory=list)
    chain: ChainReport | None = None

    @property
    def appended(self) -> int:
        """Events appended (the first round)."""
        return sum(d.appended for d in self.delivered)

    @property
    def duplicates(self) -> int:
        """Deliveries the log recognised (the second round)."""
        return sum(d.duplicates for d in self.delivered)

    @property
    def planted(self) -> bool:
        """Whether every payout matched but the two planted, which are exactly the exceptions."""
        status = {p["payout_id"]: p["status"] for p in self.payouts}
        expected = {pid: "matched" for pid in demo_month.build_month().payouts}
        expected[demo_month.MISSING_PAYOUT] = "missing_deposit"
        expected[demo_month.SHORT_PAYOUT] = "amount_mismatch"
        kinds = sorted((e["kind"], e["reference"]) for e in self.exceptions)
        return status == expected and kinds == sorted(
            [("amount_mismatch", demo_month.SHORT_PAYOUT),
             ("missing_deposit", demo_month.MISSING_PAYOUT)]
        )  # fmt: skip

    @property
    def bank_reconciliation(self) -> tuple[int, int, int]:
        """The books' bank balance, the payouts missing at the bank, the deposits' shortfall."""
        books = sum(
            line["balance_minor"]
            for line in self.trial_balance.get("lines", [])
            if str(line.get("role") or "").startswith("bank:")
        )
        missing = sum(e["amount_minor"] for e in self.exceptions if e["kind"] == "missing_deposit")
        short = -sum(
            e["difference_minor"] or 0 for e in self.exceptions if e["kind"] == "amount_mismatch"
        )
        return books, missing, short

    @property
    def bank_explained(self) -> bool:
        """Whether the books' bank balance is the statement's plus the open exceptions."""
        books, missing, short = self.bank_reconciliation
        return self.statement_balance_minor + missing + short == books

    @property
    def ok(self) -> bool:
        """Everything checks out: balanced, planted exceptions only, clean sync, intact chain."""
        return (
            bool(self.trial_balance.get("balanced"))
            and self.planted
            and not self.unmapped
            and self.bank_explained
            and all(row["status"] == "tied" for row in self.clearing)
            and all(not s.problems and not s.failed for s in self.syncs)
            and self.chain is not None
            and self.chain.ok
        )


def demo_config(settings: Settings) -> Config:
    """The demo's own config, ``demo.toml`` under ``LEDGERHUB_HOME`` (rewritten when it differs),
    with a webhook secret per provider made once (``secrets/``, readable by the owner only)."""
    home = settings.home
    folder = home / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("stripe", "shopify"):
        secret = folder / f"{name}.key"
        if not secret.exists():
            secret.touch(mode=0o600)
            secret.write_text(f"whsec_{secrets.token_hex(24)}")
    path = home / "demo.toml"
    text = DEMO_CONFIG.format(
        stripe=demo_month.STRIPE,
        shopify=demo_month.SHOPIFY,
        bank=demo_month.BANK,
        payroll=demo_month.PAYROLL,
    )
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return load_config(path)


def _beancount_check(path: str) -> tuple[list[str], list[str]]:
    """What Beancount's loader says of the file, and its statement balances in words."""
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(path)
    balances = []
    for entry in entries:
        when = f"at the start of {entry.date}"
        if isinstance(entry, data.Balance):
            balances.append(f"{entry.amount} {when}: asserted (the books agree)")
        elif isinstance(entry, data.Note) and "lh-statement" in entry.meta:
            apart = entry.meta.get("lh-difference")
            off = f"{apart.number:+} {apart.currency}" if apart is not None else "some"
            balances.append(f"{entry.meta['lh-statement']} {when}: noted (the books: {off})")
    return [str(getattr(error, "message", error)) for error in errors], balances


async def _caught_up(store: EventStore, names: set[str], task: asyncio.Task[None],
                     patience: float) -> None:  # fmt: skip
    """Return once every projection in ``names`` has read the whole log (``StoreUnavailable``
    after ``patience`` seconds; the worker's own error if it died)."""
    status = ProjectionStore.over(store)
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        ready = {
            s.name
            for s in await status.status()
            if s.name in names and s.position >= s.head and s.state == "running"
        }
        if ready == names:
            return
        if task.done():
            task.result()  # the worker died: raise its error
        if asyncio.get_running_loop().time() > deadline:
            raise StoreUnavailable(f"the projections did not catch up within {patience:.0f} s")
        await asyncio.sleep(0.1)


async def _sync(store: EventStore, config: Config, settings: Settings) -> list[SyncReport]:
    reports = []
    sender = Sender(store, document_source())
    async with open_targets(config, settings.home) as pairs:
        for tenant, target in pairs:
            run_id = await sender.run(tenant, target)
            run = next(r for r in await sender.log.runs(tenant=tenant) if r.id == run_id)
            location = str(getattr(target, "path", target.name))
            problems, balances = (
                await asyncio.to_thread(_beancount_check, location)
                if target.name == "beancount"
                else ([], [])
            )
            reports.append(
                SyncReport(target.name, location, run.sent, run.failed, problems, balances)
            )
    return reports


class _Client:
    """The demo's HTTP client of the hub it started."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> list[str]:
        async with self.session.post(self.url + path, data=body, headers=headers) as response:
            answer = await response.read()
            if response.status != 200:
                said = answer[:300].decode(errors="replace")
                raise LedgerhubError(f"POST {path} answered {response.status}: {said}")
        return [str(r["status"]) for r in orjson.loads(answer)["results"]]

    async def get(self, path: str, key: str, field_name: str) -> Any:
        rows: list[Any] = []
        query = path if field_name == "" else f"{path}?limit=500"
        while True:
            headers = {"Authorization": f"Bearer {key}"}
            async with self.session.get(self.url + query, headers=headers) as response:
                answer = await response.read()
                if response.status != 200:
                    raise LedgerhubError(f"GET {path} answered {response.status}")
            body = orjson.loads(answer)
            if field_name == "":
                return body
            rows += body[field_name]
            after = body.get("next")
            if not after:
                return rows
            query = f"{path}?limit=500&after={after}"


def _signed(webhook: demo_month.Webhook, secret: bytes, url: str) -> tuple[bytes, dict[str, str]]:
    plugin = connector(webhook.connector)
    if plugin is None or plugin.verifier is None:
        raise LedgerhubError(f"no installed connector {webhook.connector!r} verifies webhooks")
    body = orjson.dumps(webhook.body)
    headers = {"Content-Type": "application/json"}
    if webhook.connector == "shopify":
        headers |= {
            "X-Shopify-Topic": webhook.topic,
            "X-Shopify-Event-Id": webhook.event_id,
            "X-Shopify-Triggered-At": webhook.triggered_at,
            "X-Shopify-Shop-Domain": f"{webhook.name}.myshopify.com",
        }
    headers |= plugin.verifier.sign(body, secret, now=datetime.now(UTC), url=url)
    return body, headers


def _count(delivered: Delivered, statuses: list[str]) -> None:
    delivered.appended += statuses.count("appended")
    delivered.duplicates += statuses.count("duplicate")


async def _deliver(
    client: _Client, store: EventStore, config: Config, month: Month, ingest: str,
    statements: list[Path],
) -> list[Delivered]:  # fmt: skip
    """Every delivery of the month, twice (providers redeliver; the log keeps each once)."""
    names = " and ".join(s.name for s in statements)
    counts = {
        "stripe": Delivered("signed webhooks", "Stripe charges, refund, dispute, payouts"),
        "shopify": Delivered("signed webhooks", "Shopify orders and refund"),
        "pushed": Delivered("POST /v1/events", "balance transactions, payouts, payroll"),
        "bank": Delivered("import bank", f"OFX statements {names}"),
    }
    importer = importer_for("bank")
    account = demo_month.BANK.split(":", 1)[1]
    for _ in range(2):
        for webhook in month.webhooks:
            source = f"{webhook.connector}:{webhook.name}"
            connection = config.connection(source)
            secret = connection.secret() if connection is not None else None
            if secret is None:
                raise LedgerhubError(f"connection {source} has no webhook secret")
            path = f"/v1/webhooks/{webhook.connector}/{webhook.name}"
            body, headers = _signed(webhook, secret, client.url + path)
            _count(counts[webhook.connector], await client.post(path, body, headers))
        batch = orjson.dumps({"events": [p.json() for p in month.pushed]})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ingest}"}
        _count(counts["pushed"], await client.post("/v1/events", batch, headers))
        zone = config.tenant(TENANT).zone
        for statement in statements:
            async with recorded(store, tenant=TENANT, source=demo_month.BANK) as run:
                read = read_statement(statement, importer, account=account, zone=zone)
                events = statement_events(read, tenant=TENANT, source=demo_month.BANK)
                report = run.report = await import_events(store, demo_month.BANK, events)
            counts["bank"].appended += report.appended
            counts["bank"].duplicates += report.duplicates
    return list(counts.values())


async def _keys(hub_keys: KeyStore) -> DemoKeys:
    expires = datetime.now(UTC) + KEY_LIFETIME
    made = []
    for scope in ("ingest:*", "read", "operate"):
        key = new_key()
        await hub_keys.create(digest=key_digest(key), prefix=key_prefix(key), tenant=TENANT,
                              scopes=[Scope.parse(scope)], expires_at=expires,
                              label="ledgerhub demo")  # fmt: skip
        made.append(key)
    return DemoKeys(*made)


@contextlib.asynccontextmanager
async def _running(
    dsn: str, config: Config, port: int
) -> AsyncIterator[tuple[HubContext, str, asyncio.Task[None], set[str]]]:
    """The hub's API on 127.0.0.1:``port`` with every installed projection in a worker."""
    projections = select(discover(), None)
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(open_hub(dsn, config))
        try:
            url = await stack.enter_async_context(serving(hub, "127.0.0.1", port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise FatalError(f"cannot listen on 127.0.0.1:{port}: {reason.lower()}") from exc
        worker = Worker(dsn, projections, DEMO_SETTINGS, config=config)
        task = asyncio.create_task(worker.run())
        try:
            yield hub, url, task, {p.name for p in projections}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_demo(
    dsn: str,
    *,
    patience: float = 60,
    port: int = 0,
    then: Callable[[DemoReport], Awaitable[None]] | None = None,
) -> DemoReport:
    """Deliver the month twice, book, sync and reconcile it, read the results back; ``then``
    (``--serve``) is awaited with the report while the server is still up."""
    settings = Settings.from_env()
    config = demo_config(settings)
    month = build_month()
    folder = settings.home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    statements = []
    for name, text in month.statements():
        statements.append(folder / name)
        statements[-1].write_bytes(text)
    async with (
        _running(dsn, config, port) as (hub, url, task, names),
        aiohttp.ClientSession() as session,
    ):
        store = hub.store
        client = _Client(session, url)
        keys = await _keys(hub.keys)
        delivered = await _deliver(client, store, config, month, keys.ingest, statements)
        await _caught_up(store, names, task, patience)
        closing = to_minor(month.closing_balance, demo_month.CURRENCY)
        report = DemoReport(str(config.path), url, keys, str(statements[-1]), closing, delivered)
        report.syncs = await _sync(store, config, settings)
        await _caught_up(store, names, task, patience)
        report.head = await store.head()
        report.trial_balance = await client.get(
            f"/v1/ledger/trial-balance?as_of={demo_month.MONTH_END}", keys.read, ""
        )
        report.payouts = await client.get("/v1/reconciliation/payouts", keys.read, "payouts")
        report.exceptions = await client.get(
            "/v1/reconciliation/exceptions", keys.read, "exceptions"
        )
        report.clearing = await client.get("/v1/reconciliation/clearing", keys.read, "clearing")
        unmapped = await client.get("/v1/ledger/unmapped", keys.read, "")
        report.unmapped = list(unmapped["events"])
        report.chain = await verify_chain(store)
        if then is not None:
            await then(report)
        return report
