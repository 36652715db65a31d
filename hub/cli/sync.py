"""``ledgerhub sync run|shadow|status``: push accounting documents to their targets, compare
without writing, or show the run log."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator
from typing import Any

from hub.cli import usage
from hub.cli.context import open_store
from hub.cli.projections import open_projections, print_json, print_rows
from hub.cli.usage import UsageError
from hub.config import Settings, load
from hub.domain.audit import AuditAction
from hub.spi.registry import document_source
from hub.spi.target import Target
from hub.store.sync import SyncLog
from hub.sync.sender import Sender
from hub.sync.shadow import compare
from hub.sync.tenants import open_targets
from hub.usecases.audit import record_local


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "sync", help="send accounting documents to their targets, or show the sync runs"
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    run = actions.add_parser("run", help="one sync run for every tenant with a sync target")
    run.add_argument("--tenant", help="only this tenant")
    run.add_argument("--json", action="store_true", help="print each tenant's run as JSON")
    run.set_defaults(run=run_sync)
    shadow = actions.add_parser(
        "shadow", help="compare the documents with what each target holds; write nothing"
    )
    shadow.add_argument("--tenant", help="only this tenant")
    shadow.add_argument("--json", action="store_true", help="print JSON")
    shadow.set_defaults(run=run_shadow)
    status = actions.add_parser("status", help="the latest sync runs")
    status.add_argument("--limit", type=usage.at_least(1, "--limit"), default=20)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=run_status)


@contextlib.asynccontextmanager
async def _pairs(tenant: str | None) -> AsyncIterator[list[tuple[str, Target]]]:
    settings = Settings.from_env()
    # the connections' secrets are not needed to send documents (a target reads its own)
    async with open_targets(load(settings, secrets=False), settings.home) as pairs:
        chosen = [(t, target) for t, target in pairs if tenant is None or t == tenant]
        if tenant is not None and pairs and not chosen:  # judged from the config alone
            having = ", ".join(sorted({t for t, _ in pairs}))
            raise UsageError(f"--tenant {tenant!r} has no sync target (tenants with one: {having})")
        yield chosen


def _no_target() -> int:
    print("no tenant has a sync target (tenants.NAME.sync in LEDGERHUB_CONFIG)", file=sys.stderr)
    return 1


async def run_sync(args: argparse.Namespace) -> int:
    async with _pairs(args.tenant) as pairs:
        if not pairs:
            return _no_target()
        store = await open_store()
        try:
            # a forced run is an operator action: recorded in the audit trail before it starts
            subject = {"tenant": args.tenant, "tenants": [tenant for tenant, _ in pairs]}
            await record_local(store, AuditAction.SYNC_RUN, subject, tenant=args.tenant)
            sender = Sender(store, document_source())
            done: list[dict[str, Any]] = []
            for tenant, target in pairs:
                run_id = await sender.run(tenant, target)
                if run_id is None:
                    done.append({"tenant": tenant, "target": target.name, "run": None})
                    if not args.json:
                        print(f"{tenant} → {target.name}: another process is sending; skipped")
                    continue
                run = next(r for r in await sender.log.runs(limit=5) if r.id == run_id)
                done.append(
                    {"tenant": tenant, "target": target.name, "run": run.model_dump(mode="json")}
                )
                if not args.json:
                    print(
                        f"{tenant} → {target.name}: run {run.id}: {run.sent} sent, "
                        f"{run.failed} failed, {run.parked} parked, {run.retries} retries"
                    )
        finally:
            await store.close()
    if args.json:
        print_json({"runs": done})
    return 0


async def run_shadow(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    async with _pairs(args.tenant) as pairs:
        if not pairs:
            return _no_target()
        source = document_source()
        async with open_projections() as (_, store):
            for tenant, target in pairs:
                for found in await compare(store, source, tenant, target):
                    row = {"tenant": tenant, "target": target.name, **dataclasses.asdict(found)}
                    rows.append(row)
    if args.json:
        print_json({"differences": rows})
        return 0
    columns = ("tenant", "target", "kind", "doc_key", "idempotency_key", "description")
    print_rows("shadow differences", columns, [[r[c] for c in columns] for r in rows])
    return 0


async def run_status(args: argparse.Namespace) -> int:
    async with open_projections() as (_, store):
        runs = await SyncLog(store).runs(limit=args.limit)
    if args.json:
        print_json({"runs": [r.model_dump(mode="json") for r in runs]})
        return 0
    print_rows(
        "sync runs",
        ("id", "tenant", "target", "started", "ended", "sent", "failed", "parked", "retries"),
        [
            (
                r.id,
                r.tenant,
                r.target,
                r.started_at.isoformat(timespec="seconds"),
                None if r.ended_at is None else r.ended_at.isoformat(timespec="seconds"),
                r.sent,
                r.failed,
                r.parked,
                r.retries,
            )
            for r in runs
        ],
    )
    return 0
