"""``ledgerhub keys create|list|revoke``: API keys (only their SHA-256 is stored)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.cli import usage
from hub.cli.context import database_dsn
from hub.cli.usage import UsageError
from hub.domain.keys import ALL_TENANTS, Access, ApiKey, key_digest, key_prefix, new_key
from hub.errors import NotFound
from hub.store.keys import KeyStore

_UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``45s`` from now, or an ISO 8601 time with a UTC offset; in
    the future, else ``UsageError``."""
    number, unit = text[:-1], text[-1:]
    if unit in _UNITS and number.isascii() and number.isdigit():
        try:
            when = now + int(number) * _UNITS[unit]
        except OverflowError:
            raise UsageError(f"--expires {text!r} is too far in the future") from None
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError as exc:
            raise UsageError(f"--expires {text!r}: give 30d, 12h, 90m, 45s or an ISO time") from exc
        if when.tzinfo is None:
            raise UsageError(f"--expires {text!r}: give the time with its UTC offset")
        try:
            when = when.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-14:00 is in the year 10000 in UTC
            raise UsageError(f"--expires {text!r} is too far in the future") from None
    if when <= now:
        raise UsageError(f"--expires {text!r} is not in the future")
    return when


@contextlib.asynccontextmanager
async def _key_store() -> AsyncIterator[KeyStore]:
    keys = await KeyStore.open(await database_dsn())
    try:
        yield keys
    finally:
        await keys.close()


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "keys", help="create, list and revoke API keys"
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    create = actions.add_parser("create", help="create a key; it is printed once, on the last line")
    create.add_argument(
        "--tenant",
        required=True,
        type=usage.text("--tenant"),
        help="the key's tenant ('*' only for operate)",
    )
    create.add_argument(
        "--scope",
        required=True,
        type=usage.scope,
        help="ingest:SOURCE, ingest:*, read or operate",
    )
    create.add_argument(
        "--expires", help="30d, 12h, 90m, 45s, or an ISO 8601 time with its UTC offset"
    )
    create.add_argument("--label", help="a note to recognise the key by")
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant")
    listing.set_defaults(run=run_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", metavar="ID_OR_PREFIX", type=usage.text("ID_OR_PREFIX"))
    revoke.set_defaults(run=run_revoke)


async def run_create(args: argparse.Namespace) -> int:
    scope = args.scope
    if args.tenant == ALL_TENANTS and scope.access is not Access.OPERATE:
        raise UsageError("only an operate key may be issued for every tenant ('*')")
    now = datetime.now(UTC)
    expires = parse_expiry(args.expires, now) if args.expires else None
    key = new_key()
    async with _key_store() as keys:
        stored = await keys.create(
            digest=key_digest(key),
            prefix=key_prefix(key),
            tenant=args.tenant,
            scope=scope,
            expires_at=expires,
            label=args.label,
        )
    until = stored.expires_at.isoformat() if stored.expires_at else "never"
    print(f"key {stored.id} for tenant {stored.tenant}, scope {stored.scope}, expires {until}")
    print("store it now: it is not shown again")
    print(key)
    return 0


def _row(key: ApiKey, now: datetime) -> str:
    expires = key.expires_at.isoformat(timespec="seconds") if key.expires_at else "-"
    return (
        f"{key.id}  {key.prefix}…  {key.tenant:<12} {key.scope!s:<24} {key.state(now):<8} "
        f"expires {expires}  {key.label or ''}".rstrip()
    )


async def run_list(args: argparse.Namespace) -> int:
    async with _key_store() as keys:
        found = await keys.list(args.tenant)
    now = datetime.now(UTC)
    for key in found:
        print(_row(key, now))
    return 0


async def run_revoke(args: argparse.Namespace) -> int:
    async with _key_store() as keys:
        revoked = await keys.revoke(args.key)
    if revoked is None:
        raise NotFound(f"no single key has id or prefix {args.key!r}")
    print(f"revoked {revoked.id} ({revoked.prefix}…)")
    return 0
