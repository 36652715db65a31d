"""``ledgerhub replay``, ``ledgerhub rebuild`` and ``ledgerhub job``: projection jobs.

A replay or rebuild is recorded in the audit trail (``hub.domain.audit``) before it is queued.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli import usage
from hub.cli.progress import progress
from hub.cli.projections import describe, open_projections, print_json
from hub.cli.usage import UsageError
from hub.config import Settings, load
from hub.domain.audit import AuditAction
from hub.domain.projections import Job
from hub.runtime.operate import follow_job, worker_for
from hub.store.events import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore
from hub.usecases.audit import record_local


def register(sub: Any) -> None:
    replay: argparse.ArgumentParser = sub.add_parser(
        "replay", help="re-apply a range of events to a projection (handlers are idempotent)"
    )
    replay.add_argument("projection", type=usage.text("PROJECTION"))
    replay.add_argument(
        "--from", dest="start", type=usage.at_least(1, "--from"), required=True, metavar="N"
    )
    replay.add_argument(
        "--to", dest="end", type=usage.at_least(1, "--to"), required=True, metavar="M"
    )
    _job_options(replay)
    replay.set_defaults(run=run_replay)

    rebuild: argparse.ArgumentParser = sub.add_parser(
        "rebuild", help="rebuild a projection from position 0 into fresh tables, then swap"
    )
    rebuild.add_argument("projection", type=usage.text("PROJECTION"))
    _job_options(rebuild)
    rebuild.set_defaults(run=run_rebuild)

    job: argparse.ArgumentParser = sub.add_parser("job", help="show a replay or rebuild job")
    job.add_argument("id", type=usage.identifier)
    job.add_argument("--json", action="store_true", help="print the job as JSON")
    job.set_defaults(run=run_job)


def _job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--send",
        action="store_true",
        help="also call the projection's side effects (outside systems); off by default",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="queue the job, print its id and return"
    )


async def run_replay(args: argparse.Namespace) -> int:
    if args.start > args.end:
        raise UsageError(f"--from {args.start} is after --to {args.end} (need from <= to)")
    load(Settings.from_env())  # a config mistake: refused, nothing queued
    async with open_projections() as (dsn, store):
        await store.require(args.projection)
        subject = {
            "projection": args.projection,
            "from": args.start,
            "to": args.end,
            "send": args.send,
            "partition": None,
        }
        await record_local(EventStore(store.pool), AuditAction.REPLAY, subject)
        job = await Jobs(store).enqueue(
            args.projection,
            "replay",
            from_position=args.start,
            to_position=args.end,
            send=args.send,
        )
        return await _finish(dsn, store, job, args.no_wait)


async def run_rebuild(args: argparse.Namespace) -> int:
    load(Settings.from_env())  # a config mistake: refused, nothing queued
    async with open_projections() as (dsn, store):
        await store.require(args.projection)
        subject = {"projection": args.projection, "send": args.send}
        await record_local(EventStore(store.pool), AuditAction.REBUILD, subject)
        job = await Jobs(store).enqueue(args.projection, "rebuild", send=args.send)
        return await _finish(dsn, store, job, args.no_wait)


async def _finish(dsn: str, store: ProjectionStore, job: Job, no_wait: bool) -> int:
    print(describe(job), file=sys.stderr, flush=True)
    if no_wait:
        print(job.id)
        return 0
    async with worker_for(dsn, store, job.projection):
        with progress(f"{job.kind} {job.projection}") as update:
            job = await follow_job(store, job.id, update)
    if job.state == "failed":
        print(f"ledgerhub: job {job.id} failed: {job.error}", file=sys.stderr)
        return 1
    print(describe(job))
    return 0


async def run_job(args: argparse.Namespace) -> int:
    async with open_projections() as (_, store):
        job = await Jobs(store).get(args.id)
    if args.json:
        print_json(job.model_dump(mode="json"))
    else:
        print(describe(job))
    return 0
