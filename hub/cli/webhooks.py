"""``ledgerhub webhooks send stripe|shopify --to URL --secret REF``: a signed sample delivery.

``--secret`` is best given as ``env:NAME`` or ``file:PATH``; the secret itself (``whsec_…``, as
the provider's dashboard shows it) is accepted too, with a warning on stderr: a command line is
visible to every user of the machine (``ps``). ``--list`` (or a ``--sample`` out of range) shows
the samples there are.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import aiohttp

from hub.cli import usage
from hub.cli.usage import UsageError
from hub.config import resolve_secret
from hub.errors import RetriableError
from hub.usecases.webhook_samples import (
    PROVIDERS,
    Provider,
    sample_count,
    sample_titles,
    signed_sample,
)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("webhooks", help="test webhook receivers")
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    send = actions.add_parser("send", help="sign and send a sample delivery to a running hub")
    send.add_argument("provider", choices=PROVIDERS)
    send.add_argument(
        "--list", action="store_true", help="list the provider's samples and send nothing"
    )
    send.add_argument(
        "--to",
        metavar="URL",
        type=usage.http_url,
        help="e.g. http://127.0.0.1:8080/v1/webhooks/stripe/acct_demo",
    )
    send.add_argument(
        "--secret",
        metavar="REF",
        type=usage.text("--secret"),
        help="the connection's webhook secret: env:NAME or file:PATH (or the secret itself, "
        "which other users can see in ps)",
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


def _samples(provider: Provider) -> str:
    """The provider's samples, one ``N: id type`` a line."""
    return "\n".join(f"{n}: {title}" for n, title in enumerate(sample_titles(provider)))


def _secret(text: str) -> bytes:
    """``--secret``: resolved from ``env:``/``file:``, or taken as given (with a warning)."""
    kind, sep, target = text.partition(":")
    if kind in ("env", "file") and sep and target:
        return resolve_secret(text)
    print(
        "ledgerhub: warning: a secret on the command line is visible to other users (ps); "
        "prefer --secret env:NAME",
        file=sys.stderr,
    )
    return text.encode()


async def run_send(args: argparse.Namespace) -> int:
    count = sample_count(args.provider)
    if args.list:
        print(_samples(args.provider))
        return 0
    missing = [flag for flag, value in (("--to", args.to), ("--secret", args.secret)) if not value]
    if missing:
        raise UsageError(f"{' and '.join(missing)} required (or --list)")
    if not 0 <= args.sample < count:
        titles = "; ".join(_samples(args.provider).splitlines())
        raise UsageError(f"--sample must be 0..{count - 1} for {args.provider} ({titles})")
    secret = _secret(args.secret)
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
