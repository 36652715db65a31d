"""Usage errors: arguments a command can judge wrong by themselves, without the database.

Such a mistake exits 2 with one line on stderr, like argparse's own (``ledgerhub``'s ``main``
reports it through the subcommand's parser). Each argument is checked by its ``type=`` (the
helpers below, so argparse names the argument); what only a combination of arguments makes
wrong raises ``UsageError`` at the start of the command, before it connects to anything.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from hub.domain.events import Name
from hub.domain.keys import Network, Rate, Scope, parse_network
from hub.errors import InvalidInput

_NAME: TypeAdapter[str] = TypeAdapter(Name)


class UsageError(Exception):
    """The command was called wrongly (exit 2); the message says how."""


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def at_least(low: int, what: str) -> Callable[[str], int]:
    """An ``int`` argument of at least ``low`` (``what`` names it in the message)."""

    def convert(text: str) -> int:
        value = _int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} must be at least {low}, got {value}")
        return value

    convert.__name__ = what  # argparse names the type in some messages
    return convert


position = at_least(0, "a position")
"""A log position: 0 (before the first event) or more."""

identifier = at_least(1, "an id")
"""A row id (job, parked event): 1 or more."""


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"seconds must be a positive number, got {text!r}")
    return value


def text(what: str) -> Callable[[str], str]:
    """A string argument that must not be blank."""

    def convert(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        return value

    convert.__name__ = what
    return convert


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host."""
    try:
        parsed = urlsplit(text)
        valid = parsed.scheme in ("http", "https") and bool(parsed.hostname)
        parsed.port  # noqa: B018 - a port out of range raises ValueError
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def name(what: str, *, prefix: str = "") -> Callable[[str], str]:
    """A name the log keeps (a tenant, or a source once ``prefix`` is put before it): not
    blank, at most 200 characters, no NUL."""
    check = text(what)

    def convert(value: str) -> str:
        try:
            _NAME.validate_python(prefix + check(value))
        except ValidationError as exc:
            message = str(exc.errors(include_url=False)[0]["msg"])
            message = message[:1].lower() + message[1:]
            whole = f" (the whole source {prefix}NAME)" if prefix else ""
            raise argparse.ArgumentTypeError(f"{message}{whole}") from None
        return value

    convert.__name__ = what
    return convert


def scope(text: str) -> Scope:
    """A key scope: ``ingest:SOURCE``, ``ingest:*``, ``read`` or ``operate``."""
    try:
        return Scope.parse(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


_UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}


def is_duration(text: str) -> bool:
    """Whether ``text`` is written as a duration (``<n>`` digits and a unit), whatever its size."""
    number, unit = text[:-1], text[-1:]
    return unit in _UNITS and number.isascii() and number.isdigit()


def duration(text: str) -> timedelta:
    """A duration: ``<n>s``, ``<n>m``, ``<n>h`` or ``<n>d`` (``2s``, ``15m``, ``24h``,
    ``30d``), n a whole number, 0 included."""
    if not is_duration(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 2s, 15m, 24h or 30d")
    try:
        return int(text[:-1]) * _UNITS[text[-1]]
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is too long a duration") from None


def cidr(text: str) -> Network:
    """A network in CIDR notation (``203.0.113.0/24``, ``2001:db8::/32``; an address alone is
    one host)."""
    try:
        return parse_network(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def rate(text: str) -> Rate:
    """A rate limit: ``<n>/s``, ``<n>/m`` or ``<n>/h``."""
    try:
        return Rate.parse(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None
