"""``ledgerhub webhooks send stripe|shopify --to URL --secret REF``: a signed sample delivery."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import aiohttp

from hub.cli import usage
from hub.cli.usage import UsageError
from hub.config import resolve_secret
from hub.errors import RetriableError
from hub.usecases.webhook_samples import PROVIDERS, sample_count, signed_sample


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("webhooks", help="test webhook receivers")
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    send = actions.add_parser("send", help="sign and send a sample delivery to a running hub")
    send.add_argument("provider", choices=PROVIDERS)
    send.add_argument(
        "--to",
        required=True,
        metavar="URL",
        type=usage.http_url,
        help="e.g. http://127.0.0.1:8080/v1/webhooks/stripe/acct_demo",
    )
    send.add_argument(
        "--secret",
        required=True,
        metavar="REF",
        type=usage.secret_ref,
        help="the connection's webhook secret as env:NAME or file:PATH",
    )
    send.add_argument(
        "--sample",
        type=usage.at_least(0, "--sample"),
        default=0,
        help="which sample to send (default 0)",
    )
    send.add_argument(
        "--fresh", action="store_true", help="give the event a new id (so it is not a duplicate)"
    )
    send.set_defaults(run=run_send)


async def run_send(args: argparse.Namespace) -> int:
    count = sample_count(args.provider)
    if not 0 <= args.sample < count:
        raise UsageError(f"--sample must be 0..{count - 1} for {args.provider}")
    secret = resolve_secret(args.secret)
    delivery = signed_sample(args.provider, args.sample, secret, fresh_id=args.fresh, url=args.to)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(args.to, data=delivery.body, headers=delivery.headers) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, OSError) as exc:
        raise RetriableError(f"cannot reach {args.to}: {exc}") from exc
    if response.status >= 300:
        print(
            f"ledgerhub: {args.to} answered HTTP {response.status}: {text[:300]!r}", file=sys.stderr
        )
        return 1
    print(f"sent {args.provider} event {delivery.external_id}: HTTP {response.status}")
    print(text)
    return 0
