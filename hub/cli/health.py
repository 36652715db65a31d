"""``ledgerhub health [--json]``: check every connection now (DESIGN "Health and alerts").

Runs each connection's and each sync target's check at once (``hub.runtime.health.check_now``),
records the results as the workers do (so a change of state raises its alert through
``[alerts]``), and prints them: a table (tab-separated lines when standard output is not a
terminal), or with ``--json`` ``{"connections": [{"id", "tenant", "state", "checked_at",
"detail"}]}`` like ``GET /v1/health/connections``. Exits 1 when any connection is failing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from hub.cli.context import database_dsn
from hub.cli.projections import print_json, print_rows
from hub.config import Settings, load
from hub.runtime.health import HealthEnvironment, check_now
from hub.store.pool import create_pool


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "health", help="check every connection now; exit 1 when any is failing"
    )
    parser.add_argument(
        "--json", action="store_true", help="JSON, as GET /v1/health/connections answers"
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    config = load(settings)
    HealthEnvironment.from_env()  # a bad LEDGERHUB_HEALTH_* stops us before any call
    pool = await create_pool(await database_dsn(), max_size=2)
    try:
        results = await check_now(pool, config, settings.home)
    finally:
        await pool.close()
    checked_at = datetime.now(UTC).isoformat()
    rows = [
        {
            "id": r.connection,
            "tenant": r.tenant,
            "state": "ok" if r.ok else "failing",
            "checked_at": checked_at,
            "detail": r.detail,
        }
        for r in results
    ]
    if args.json:
        print_json({"connections": rows})
    else:
        print_rows(
            "connections",
            ("connection", "tenant", "state", "detail"),
            [(r["id"], r["tenant"], r["state"], r["detail"]) for r in rows],
        )
    failing = [r["id"] for r in rows if r["state"] == "failing"]
    if failing:
        print(f"health: {len(failing)} connection(s) failing: {', '.join(failing)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
