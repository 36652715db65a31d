"""``ledgerhub keys create|list|revoke``: API keys (only their SHA-256 is stored)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.cli.context import database_dsn
from hub.domain.keys import ALL_TENANTS, Access, ApiKey, Scope, key_digest, key_prefix, new_key
from hub.errors import InvalidInput, NotFound
from hub.store.keys import KeyStore

_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m`` from now, or an ISO 8601 time with a UTC offset."""
    number, unit = text[:-1], text[-1:]
    if unit in _UNITS and number.isdigit():
        return now + int(number) * _UNITS[unit]
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"--expires {text!r}: give 30d, 12h, 90m or an ISO time") from exc
    if when.tzinfo is None:
        raise InvalidInput(f"--expires {text!r}: give the time with its UTC offset")
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
    create.add_argument("--tenant", required=True, help="the key's tenant ('*' only for operate)")
    create.add_argument("--scope", required=True, help="ingest:SOURCE, ingest:*, read or operate")
    create.add_argument("--expires", help="30d, 12h, 90m, or an ISO 8601 time")
    create.add_argument("--label", help="a note to recognise the key by")
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant")
    listing.set_defaults(run=run_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", metavar="ID_OR_PREFIX")
    revoke.set_defaults(run=run_revoke)


async def run_create(args: argparse.Namespace) -> int:
    scope = Scope.parse(args.scope)
    if args.tenant == ALL_TENANTS and scope.access is not Access.OPERATE:
        raise InvalidInput("only an operate key may be issued for every tenant ('*')")
    if not args.tenant.strip():
        raise InvalidInput("--tenant must not be empty")
    now = datetime.now(UTC)
    expires = parse_expiry(args.expires, now) if args.expires else None
    if expires is not None and expires <= now:
        raise InvalidInput("--expires is in the past")
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
