"""``ledgerhub db url`` and ``ledgerhub db stop``: the database, for psql and BI tools.

``db url`` prints the DSN the hub uses: the embedded server's (started if it is not running;
its ``ledgerhub`` database over a local socket, no password) so that ``psql "$(ledgerhub db
url)"`` or a BI tool can connect. When ``LEDGERHUB_DSN`` names a server of your own, it is
printed with its password replaced by ``***`` (the hub never echoes a password it was given),
and a line on stderr says so. ``db stop`` stops the embedded server (the next command that
needs it starts it again); it refuses, exit 1, when ``LEDGERHUB_DSN`` names another server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from hub.cli.context import database_dsn
from hub.cli.projections import print_json
from hub.config import Settings, redact
from hub.errors import LedgerhubError
from hub.store.provision import stop_embedded


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "db",
        help="the database: its URL for psql and BI tools, or stop the embedded one",
        description="The hub's PostgreSQL: LEDGERHUB_DSN, or the embedded server in "
        "LEDGERHUB_HOME.",
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    url = actions.add_parser(
        "url",
        help='print the database URL (psql "$(ledgerhub db url)")',
        description="Print the DSN of the hub's database: the embedded server's (started if "
        "needed), or LEDGERHUB_DSN with its password redacted.",
    )
    url.add_argument("--json", action="store_true", help='{"dsn", "embedded", "redacted"}')
    url.set_defaults(run=run_url)
    stop = actions.add_parser(
        "stop",
        help="stop the embedded PostgreSQL server",
        description="Stop the embedded PostgreSQL server (open sessions are ended); the next "
        "command that needs it starts it again.",
    )
    stop.set_defaults(run=run_stop)


async def run_url(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    embedded = settings.dsn is None
    dsn = await database_dsn() if embedded else redact(settings.dsn or "")
    redacted = not embedded and dsn != settings.dsn
    if args.json:
        print_json({"dsn": dsn, "embedded": embedded, "redacted": redacted})
        return 0
    print(dsn)
    if redacted:
        print(
            "ledgerhub: LEDGERHUB_DSN names your own server; its password is shown as ***",
            file=sys.stderr,
        )
    return 0


async def run_stop(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.dsn is not None:
        raise LedgerhubError(
            "LEDGERHUB_DSN names a server ledgerhub did not start: stop it the way it was started"
        )
    pgdata = settings.home / "pg"
    if await asyncio.to_thread(stop_embedded, pgdata):
        print(f"stopped the embedded PostgreSQL in {pgdata}")
    else:
        print(f"the embedded PostgreSQL in {pgdata} is not running")
    return 0
