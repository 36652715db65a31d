"""Structured logs (DESIGN "Logs"): structlog, one renderer for every line the process logs.

``configure`` (called once by the ``ledgerhub`` entry point, ``hub.cli.main``) puts one handler
on the root logger whose formatter is structlog's ``ProcessorFormatter``, so the standard
library's ``logging`` calls across the code base (``log.warning("…", …)``) and structlog's own
loggers come out the same way:

- ``LEDGERHUB_LOG_FORMAT``: ``json`` (one JSON object a line) or ``console`` (aligned text for a
  person); default ``json`` when standard error is not a terminal, ``console`` when it is.
- ``LEDGERHUB_LOG_LEVEL``: ``debug``, ``info``, ``warning``, ``error`` or ``critical``. Unset:
  warnings and worse, plus the access log (``info``, one line per HTTP request); ``-v``:
  debug. What a service says about itself (``ledgerhub.service``: where it listens) is shown at
  every level.

A line logged through the standard library carries the fields passed as its ``extra``
(``log.info("request", extra={"status": 200})``). Each line has ``timestamp`` (ISO 8601, UTC),
``level``, ``event`` (the message) and ``logger``,
and, where known, the context bound with ``bound`` (contextvars, so it follows the task):
``request_id`` and ``tenant`` (bound per request by the API's middleware, ``hub.api.access``),
``projection``, ``connection``; ``trace_id`` is the current OpenTelemetry span's, when there is
one. An exception's traceback is in ``exception``.

Never logged: secrets, keys or payloads. The code logs none, and ``_redact`` is a last guard: a
field named like a credential (``authorization``, ``api_key``, ``secret``, ``token``,
``password``, ``cookie``) is replaced, and an API key (``lh_…``) or a bearer credential inside
any text is cut to the prefix ``keys list`` shows.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

import orjson
import structlog
from opentelemetry.trace import format_trace_id, get_current_span
from structlog.typing import EventDict, Processor, WrappedLogger

from hub.domain.keys import KEY_PREFIX
from hub.errors import ConfigError

FORMATS = ("json", "console")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
ACCESS_LOGGER = "ledgerhub.access"
"""The logger of the access log: one ``info`` line per HTTP request."""
SERVICE_LOGGER = "ledgerhub.service"
"""The logger of what a long-running command says about itself at ``info`` (where it listens):
shown whatever ``LEDGERHUB_LOG_LEVEL`` says, since tools wait for that line."""

REDACTED = "[redacted]"
_SECRET_FIELD = re.compile(r"authorization|api_?key|secret|token|password|cookie", re.IGNORECASE)
_KEY = re.compile(re.escape(KEY_PREFIX) + r"([A-Za-z0-9_-]{6})[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(Bearer|Basic)\s+[^\s\"',;]+", re.IGNORECASE)
_HANDLER = "ledgerhub"
"""The name of the root handler ``configure`` installs (replaced when called again)."""


def bound(**fields: Any) -> contextlib.AbstractContextManager[None]:
    """Bind ``fields`` (``tenant``, ``projection``, ``connection`` …) to every line logged in
    this context (this task and those it starts) for the block; ``None`` values are left out."""
    return structlog.contextvars.bound_contextvars(
        **{k: v for k, v in fields.items() if v is not None}
    )


def bind(**fields: Any) -> None:
    """Bind ``fields`` to every line logged from now on in this context (for a task that ends
    with its work, such as an HTTP request's); ``None`` values are left out."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})


def unbind(*names: str) -> None:
    """Stop adding ``names`` to the lines logged in this context."""
    structlog.contextvars.unbind_contextvars(*names)


_PROCESS_FIELDS: dict[str, Any] = {}


def tag_process(**fields: Any) -> None:
    """Add ``fields`` to every line this process logs from now on (``serve --processes``
    names each API process: ``process``, ``pid``)."""
    _PROCESS_FIELDS.update(fields)


def _process(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    for name, value in _PROCESS_FIELDS.items():
        event.setdefault(name, value)
    return event


def _trace_id(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Add the current span's trace id (32 hex digits) unless one is bound."""
    if "trace_id" not in event:
        context = get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format_trace_id(context.trace_id)
    return event


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        if KEY_PREFIX not in value and " " not in value and value.isprintable():
            return value  # no key and no whitespace (printable: none but " "): nothing to cut
        return _BEARER.sub(r"\1 " + REDACTED, _KEY.sub(KEY_PREFIX + r"\1…", value))
    if isinstance(value, Mapping):
        return {k: REDACTED if _secret_name(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _secret_name(name: object) -> bool:
    return isinstance(name, str) and _secret_text(name)


@functools.lru_cache(maxsize=1024)  # the same few field names, on every line
def _secret_text(name: str) -> bool:
    return _SECRET_FIELD.search(name) is not None


def _redact(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The last guard against a secret in a line (see the module docstring)."""
    for name, value in list(event.items()):
        event[name] = REDACTED if _secret_name(name) else _scrub(value)
    return event


def _json_line(event: EventDict, **_: Any) -> str:
    """A line as JSON through orjson (structlog's own advice: every request writes one), the
    standard library's encoder for what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event, default=str)


def _level_of(environ: Mapping[str, str]) -> int | None:
    text = environ.get("LEDGERHUB_LOG_LEVEL", "").strip().lower()
    if not text:
        return None
    if text not in LEVELS:
        raise ConfigError(f"LEDGERHUB_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {text!r}")
    return LEVELS[text]


def _format_of(environ: Mapping[str, str], stream: IO[str]) -> str:
    text = environ.get("LEDGERHUB_LOG_FORMAT", "").strip().lower()
    if not text:
        return "console" if _isatty(stream) else "json"
    if text not in FORMATS:
        raise ConfigError(f"LEDGERHUB_LOG_FORMAT must be json or console, not {text!r}")
    return text


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure(
    *,
    verbose: bool = False,
    environ: Mapping[str, str] | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Log every line to ``stream`` (default: standard error) as the environment says (see the
    module docstring; ``verbose``: debug); ``ConfigError`` for a variable with a bad value.
    Calling it again replaces what an earlier call installed."""
    environ = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    fmt = _format_of(environ, stream)
    chosen = _level_of(environ)
    level = logging.DEBUG if verbose else (chosen if chosen is not None else logging.WARNING)
    access = level if verbose or chosen is not None else logging.INFO

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _trace_id,
        _process,
    ]
    foreign: list[Processor] = [*shared, structlog.stdlib.ExtraAdder()]
    renderer: Processor
    final: list[Processor]
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
        final = [structlog.processors.format_exc_info, _redact, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))
        final = [_redact, renderer]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(ACCESS_LOGGER).setLevel(access)
    logging.getLogger(SERVICE_LOGGER).setLevel(min(level, logging.INFO))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
