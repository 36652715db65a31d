"""``ledgerhub keys create|list|rotate|revoke``: API keys (only their SHA-256 is stored).

Creating, rotating and revoking a key are recorded in the audit trail (``hub.domain.audit``:
``audit.key.created|rotated|revoked``, by ``cli:<user>`` from ``local:<host>``, naming the key
by id and prefix, never the key), appended before the key table is changed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.cli import usage
from hub.cli.context import database_dsn
from hub.cli.usage import UsageError
from hub.domain.audit import AuditAction
from hub.domain.keys import ALL_TENANTS, Access, ApiKey, key_digest, key_prefix, new_key
from hub.errors import NotFound
from hub.store.events import EventStore
from hub.store.keys import KeyStore
from hub.usecases.audit import record_local

DEFAULT_OVERLAP = timedelta(hours=24)


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``45s`` from now, or an ISO 8601 time with a UTC offset; in
    the future, else ``UsageError``."""
    if usage.is_duration(text):
        try:
            when = now + usage.duration(text)
        except (argparse.ArgumentTypeError, OverflowError):
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


@contextlib.asynccontextmanager
async def _audited() -> AsyncIterator[tuple[KeyStore, EventStore]]:
    """The key store and the event log (for the audit trail), on one pool."""
    async with _key_store() as keys:
        yield keys, EventStore(keys.pool)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "keys", help="create, list, rotate and revoke API keys"
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
        action="append",
        type=usage.scope,
        help="ingest:SOURCE, ingest:*, read or operate (repeatable: the key holds each)",
    )
    create.add_argument(
        "--allow-ip",
        metavar="CIDR",
        action="append",
        type=usage.cidr,
        default=[],
        help="a client network the key may be used from (repeatable; default: any)",
    )
    create.add_argument(
        "--rate",
        type=usage.rate,
        help="the key's rate limit, <n>/s, <n>/m or <n>/h (default: LEDGERHUB_RATE_LIMIT)",
    )
    create.add_argument(
        "--expires", help="30d, 12h, 90m, 45s, or an ISO 8601 time with its UTC offset"
    )
    create.add_argument("--label", help="a note to recognise the key by")
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant")
    listing.add_argument(
        "--json", action="store_true", help="a JSON array of the keys (never the keys themselves)"
    )
    listing.set_defaults(run=run_list)
    rotate = actions.add_parser(
        "rotate", help="replace a key by a new one (printed once, on the last line)"
    )
    rotate.add_argument("key", metavar="ID_OR_PREFIX", type=usage.text("ID_OR_PREFIX"))
    rotate.add_argument(
        "--overlap",
        type=usage.duration,
        default=DEFAULT_OVERLAP,
        help="how long the old key stays valid: <n>s|m|h|d (default 24h)",
    )
    rotate.set_defaults(run=run_rotate)
    revoke = actions.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", metavar="ID_OR_PREFIX", type=usage.text("ID_OR_PREFIX"))
    revoke.set_defaults(run=run_revoke)


async def run_create(args: argparse.Namespace) -> int:
    scopes = list(dict.fromkeys(args.scope))
    if args.tenant == ALL_TENANTS and [s.access for s in scopes] != [Access.OPERATE]:
        raise UsageError("only an operate key (and nothing else) may be issued for every tenant")
    now = datetime.now(UTC)
    expires = parse_expiry(args.expires, now) if args.expires else None
    key = new_key()
    key_id = uuid.uuid4()
    subject = {
        "key_id": str(key_id),
        "prefix": key_prefix(key),
        "tenant": args.tenant,
        "scopes": [str(scope) for scope in scopes],
        "allow_ips": [str(net) for net in args.allow_ip],
        "rate": None if args.rate is None else str(args.rate),
        "expires_at": _time(expires),
        "label": args.label,
    }
    async with _audited() as (keys, events):
        await record_local(events, AuditAction.KEY_CREATED, subject, tenant=args.tenant)
        stored = await keys.create(
            key_id=key_id,
            digest=key_digest(key),
            prefix=key_prefix(key),
            tenant=args.tenant,
            scopes=scopes,
            expires_at=expires,
            label=args.label,
            allow_ips=args.allow_ip,
            rate=args.rate,
        )
    until = stored.expires_at.isoformat() if stored.expires_at else "never"
    print(f"key {stored.id} for tenant {stored.tenant}, scopes {stored.scope}, expires {until}")
    if stored.allow_ips:
        print("allowed from " + ", ".join(str(net) for net in stored.allow_ips))
    if stored.rate:
        print(f"rate limit {stored.rate}")
    print("store it now: it is not shown again")
    print(key, flush=True)
    return 0


async def run_rotate(args: argparse.Namespace) -> int:
    key = new_key()
    new_id = uuid.uuid4()
    async with _audited() as (keys, events):
        old = await keys.get(args.key)
        if old.replaced_by is None and old.state(datetime.now(UTC)) == "active":
            # (a key that cannot be rotated is refused by ``rotate`` below, unaudited)
            subject = {
                "key_id": str(old.id),
                "prefix": old.prefix,
                "new_key_id": str(new_id),
                "new_prefix": key_prefix(key),
                "overlap_seconds": args.overlap.total_seconds(),
            }
            await record_local(events, AuditAction.KEY_ROTATED, subject, tenant=old.tenant)
        old, new = await keys.rotate(
            str(old.id),
            digest=key_digest(key),
            prefix=key_prefix(key),
            overlap=args.overlap,
            new_id=new_id,
        )
    until = old.expires_at.isoformat(timespec="seconds") if old.expires_at else "never"
    print(f"rotated {old.id} ({old.prefix}…): it stays valid until {until}")
    print(f"new key {new.id} for tenant {new.tenant}, scopes {new.scope}")
    print("store it now: it is not shown again")
    print(key, flush=True)
    return 0


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def key_json(key: ApiKey, now: datetime) -> dict[str, Any]:
    """What ``keys list --json`` shows of a key: everything but the key (and its hash)."""
    return {
        "id": str(key.id),
        "prefix": key.prefix,
        "tenant": key.tenant,
        "scopes": [str(scope) for scope in key.scopes],
        "label": key.label,
        "state": key.state(now),
        "created_at": _time(key.created_at),
        "expires_at": _time(key.expires_at),
        "revoked_at": _time(key.revoked_at),
        "replaced_by": None if key.replaced_by is None else str(key.replaced_by),
        "allow_ips": [str(net) for net in key.allow_ips],
        "rate": None if key.rate is None else str(key.rate),
        "last_used_at": _time(key.last_used_at),
        "use_count": key.use_count,
    }


def _row(key: ApiKey, now: datetime) -> str:
    expires = key.expires_at.isoformat(timespec="seconds") if key.expires_at else "-"
    return (
        f"{key.id}  {key.prefix}…  {key.tenant:<12} {key.scope:<24} {key.state(now):<8} "
        f"expires {expires}  used {key.use_count}  {key.label or ''}".rstrip()
    )


async def run_list(args: argparse.Namespace) -> int:
    async with _key_store() as keys:
        found = await keys.list(args.tenant)
    now = datetime.now(UTC)
    if args.json:
        rows = [key_json(key, now) for key in found]
        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
        return 0
    for key in found:
        print(_row(key, now))
    return 0


async def run_revoke(args: argparse.Namespace) -> int:
    async with _audited() as (keys, events):
        old = await keys.get(args.key)
        subject = {"key_id": str(old.id), "prefix": old.prefix}
        await record_local(events, AuditAction.KEY_REVOKED, subject, tenant=old.tenant)
        revoked = await keys.revoke(str(old.id))
    if revoked is None:
        raise NotFound(f"no single key has id or prefix {args.key!r}")
    print(f"revoked {revoked.id} ({revoked.prefix}…)")
    return 0
