"""OFX and QFX statements, 1.x (SGML) and 2.x (XML), read with ofxtools.

ofxtools parses the header and the tag soup into an element tree; the statement lines are then
read from that tree field by field with ofxtools' own type converters. Its full model conversion
is not used because real bank files routinely break the letter of the spec in ways that do not
matter here (a 10-digit BANKID, a missing sign-on block), and one bad field must name its line.

Cost is linear in the file: where things are in it (the start of every line, the span of every
``<STMTTRN>``) is indexed once, on first need, and a line number is a binary search in that
index. Progress goes to ``report`` (``ImportOptions.progress``, ``hub.spi.importer.Progress``):
``reading lines`` (the line reached, of the file's lines) while ofxtools builds the tree, then
``checking transactions`` (of the statement's transactions).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property, lru_cache
from xml.sax import saxutils

from ofxtools.header import OFXHeaderError, parse_header
from ofxtools.Parser import ParseError, TreeBuilder
from ofxtools.Types import DateTime as OfxDateTime
from ofxtools.Types import OFXSpecError

from connectors.bank.lines import (
    BankFileError,
    StatementBalance,
    StatementLine,
    minor_units,
    quoted,
    shortened,
)
from hub.domain.money import parse_decimal
from hub.spi.importer import Progress

_STATEMENTS = ("STMTRS", "CCSTMTRS")
_TRN_OPEN = re.compile(rb"<STMTTRN>", re.IGNORECASE)
_TRN_CLOSE = re.compile(rb"</STMTTRN>", re.IGNORECASE)
_BODY = re.compile(rb"<OFX>", re.IGNORECASE)
_POSITION = re.compile(r"position=\[(\d+):")
_POSITION_NOTE = re.compile(r" - position=\[\d+:\d+\]$")
_ENTITIES = {"&nbsp;": " ", "&apos;": "'", "&quot;": '"'}
"""Besides ``&amp;``, ``&lt;`` and ``&gt;`` (OFX section 2.3), as ofxtools' own String reads."""
_DATETIME = OfxDateTime()
"""ofxtools' DTPOSTED converter (stateless: one for every line)."""
PROGRESS_EVERY = 4096
"""Tags (while building the tree) or transactions between two progress reports."""


def _unreported(stage: str, done: int, total: int | None) -> None:
    """Progress nobody watches."""


@dataclass(frozen=True)
class _Source:
    """The file's bytes, and where things are in them (each index built once, on first use)."""

    name: str
    data: bytes

    @cached_property
    def _line_starts(self) -> list[int]:
        return [m.end() for m in re.finditer(rb"\n", self.data)]

    @cached_property
    def line_count(self) -> int:
        """How many lines the file has (the last one need not end with a newline)."""
        ends_open = bool(self.data) and not self.data.endswith(b"\n")
        return len(self._line_starts) + int(ends_open)

    def line_at(self, offset: int) -> int:
        """The line (from 1) of the byte at ``offset``."""
        return bisect_left(self._line_starts, offset + 1) + 1

    @cached_property
    def _transactions(self) -> list[tuple[int, int]]:
        """Each ``<STMTTRN>``'s start and the end of its text (its ``</STMTTRN>`` or the next
        ``<STMTTRN>``, for 1.x files that leave it open)."""
        opens = [m.start() for m in _TRN_OPEN.finditer(self.data)]
        closes = [m.start() for m in _TRN_CLOSE.finditer(self.data)]
        spans = []
        for number, start in enumerate(opens):
            after = bisect_left(closes, start)
            limit = opens[number + 1] if number + 1 < len(opens) else len(self.data)
            end = closes[after] if after < len(closes) and closes[after] < limit else limit
            spans.append((start, end))
        return spans

    def transaction_line(self, transaction: int) -> int:
        """The line of the ``transaction``-th ``<STMTTRN>``."""
        if transaction >= len(self._transactions):
            return 1
        return self.line_at(self._transactions[transaction][0])

    def field_line(self, transaction: int, tag: str) -> int:
        """The line of ``tag`` in the ``transaction``-th STMTTRN (its opening line if absent)."""
        if transaction >= len(self._transactions):
            return 1
        start, end = self._transactions[transaction]
        found = re.compile(rb"<" + re.escape(tag.encode()) + rb">", re.IGNORECASE).search(
            self.data, start, end
        )
        return self.line_at(found.start() if found else start)

    def tag_line(self, tag: str, nth: int) -> int:
        """The line of the ``nth`` (from 0) ``<tag>`` of the file (line 1 if there is none)."""
        pattern = re.compile(rb"<" + re.escape(tag.encode()) + rb">", re.IGNORECASE)
        for number, found in enumerate(pattern.finditer(self.data)):
            if number == nth:
                return self.line_at(found.start())
        return 1

    def decode_error_line(self, exc: UnicodeDecodeError) -> int:
        """The line of the byte a decoder could not read (``exc.object`` is part of the file)."""
        base = self.data.find(exc.object) if isinstance(exc.object, bytes) else -1
        return self.line_at(max(base, 0) + exc.start)

    def parse_error_line(self, message: str, exc: Exception) -> int:
        """The line of the markup ofxtools stopped at (it names a position in ``message``, the
        document's body, which starts at ``<OFX>``)."""
        found = _POSITION.search(str(exc))
        body = _BODY.search(self.data)
        opening = message.upper().find("<OFX>")
        if found is None or body is None or opening == -1 or int(found[1]) < opening:
            return 1
        return self.line_at(body.start()) + message.count("\n", opening, int(found[1]))


class _Builder(TreeBuilder):
    """ofxtools' tree builder, but a closing tag with nothing open is a ``ParseError`` (which
    ofxtools reports with its position) rather than ElementTree's ``IndexError``; and, given
    ``report``, telling how far it got (``_Reporting``)."""

    def __init__(self, report: Callable[[int], None] | None = None) -> None:
        super().__init__()
        if report is not None:
            # ofxtools' feed only calls regex.finditer: a pattern that reports as it goes
            self.regex = _Reporting(TreeBuilder.regex, report)  # type: ignore[assignment]

    def end(self, tag: str) -> ET.Element:
        try:
            return super().end(tag)
        except IndexError:
            raise ParseError(f"</{tag}> closes nothing") from None


class _Reporting:
    """ofxtools' tag pattern, as its ``feed`` uses it (``regex.finditer(markup)``), calling
    ``report(offset)`` with where the match is, every ``PROGRESS_EVERY`` tags and at the end. The
    matches, and so the tree and the positions errors name, are ofxtools' own."""

    def __init__(self, pattern: re.Pattern[str], report: Callable[[int], None]) -> None:
        self.pattern = pattern
        self.report = report

    def finditer(self, markup: str) -> Iterator[re.Match[str]]:
        for number, match in enumerate(self.pattern.finditer(markup), start=1):
            if number % PROGRESS_EVERY == 0:
                self.report(match.start())
            yield match
        self.report(len(markup))


def _tree(source: _Source, report: Progress = _unreported) -> ET.Element:
    try:
        _, message = parse_header(io.BytesIO(source.data))
    except OFXHeaderError:
        # Some banks omit the header; the body alone is still an OFX document.
        text = source.data.decode("latin-1")
        start = text.upper().find("<OFX>")
        if start == -1:
            raise BankFileError(
                source.name, "line 1", "not an OFX file (no OFX header or <OFX> tag)"
            ) from None
        message = text[start:]
    except UnicodeDecodeError as exc:  # not in the encoding its header declares (or UTF-8)
        where = f"line {source.decode_error_line(exc)}"
        reason = f"a byte the character set its header declares cannot read ({exc.reason})"
        raise BankFileError(source.name, where, reason) from exc
    except LookupError as exc:
        raise BankFileError(source.name, "line 1", f"unknown character set: {exc}") from exc
    builder = _Builder(_line_reporter(source, message, report))
    try:
        builder.feed(message)
        root = builder.close()
    except (SyntaxError, ValueError) as exc:
        where = f"line {source.parse_error_line(message, exc)}"
        reason = f"malformed OFX: {shortened(_POSITION_NOTE.sub('', str(exc)))}"
        raise BankFileError(source.name, where, reason) from exc
    if not isinstance(root, ET.Element):
        raise BankFileError(source.name, "line 1", "malformed OFX: no document element")
    return root


def _line_reporter(source: _Source, message: str, report: Progress) -> Callable[[int], None]:
    """``report`` of the line reached, given an offset in ``message`` (the document from
    ``<OFX>`` on, decoded); newlines are counted once each, as the offset moves forward."""
    total = source.line_count
    opening = message.upper().find("<OFX>")
    body = _BODY.search(source.data)
    first = source.line_at(body.start()) if body is not None and opening != -1 else 1
    counted = [max(opening, 0), first]  # offset counted up to, its line

    def at(offset: int) -> None:
        if offset > counted[0]:
            counted[1] += message.count("\n", counted[0], offset)
            counted[0] = offset
        report("reading lines", min(counted[1], total), total)

    return at


def _unescape(text: str) -> str:
    return saxutils.unescape(text, _ENTITIES) if "&" in text else text


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return _unescape(found.text.strip()) or None


@lru_cache(maxsize=4096)
def _posted(text: str) -> tuple[date, datetime]:
    """The business date as written (before any UTC shift), and the aware instant (remembered:
    a statement's lines share a few thousand DTPOSTED values at most, often a day's worth)."""
    try:
        instant = _DATETIME.convert(text)
    except OverflowError:  # 00010101000000[+14]: no such instant in UTC
        raise ValueError("out of the range of dates") from None
    if not isinstance(instant, datetime):
        raise ValueError("not a date")
    return date(int(text[0:4]), int(text[4:6]), int(text[6:8])), instant


def parse_ofx(
    name: str,
    data: bytes,
    *,
    account: str,
    select: str | None = None,
    report: Progress = _unreported,
) -> list[StatementLine]:
    """Every transaction of the file's statement (``select``: the ACCTID when it holds several);
    ``report(stage, done, total)`` is told how far it got."""
    lines, _ = parse_ofx_statement(name, data, account=account, select=select, report=report)
    return lines


def parse_ofx_statement(
    name: str,
    data: bytes,
    *,
    account: str,
    select: str | None = None,
    report: Progress = _unreported,
) -> tuple[list[StatementLine], list[StatementBalance]]:
    """``parse_ofx``'s lines, and the statement's closing balance (its ``LEDGERBAL``: none when
    the file has none); a LEDGERBAL whose BALAMT or DTASOF is wrong is a problem like a bad
    line's."""
    source = _Source(name, data)
    root = _tree(source, report)
    statements = [s for tag in _STATEMENTS for s in root.iter(tag)]
    if not statements:
        raise BankFileError(name, "line 1", "the file holds no bank or card statement")
    acct_ids = [_text(s, ".//ACCTID") or "?" for s in statements]
    held = shortened(", ".join(acct_ids))
    if select is not None:
        chosen = [s for s, acct in zip(statements, acct_ids, strict=True) if acct == select]
        if not chosen:
            raise BankFileError(name, "line 1", f"no statement for account {select}; it has {held}")
    elif len(statements) > 1:
        raise BankFileError(
            name,
            "line 1",
            f"the file holds {len(statements)} accounts ({held}): "
            "choose one with --statement-account",
        )
    else:
        chosen = statements
    # each transaction's number in the file, to find its text (its lines) again
    numbers = {id(element): n for n, element in enumerate(root.iter("STMTTRN"))}
    closings = {id(element): n for n, element in enumerate(root.iter("LEDGERBAL"))}
    lines = []
    balances: list[StatementBalance] = []
    problems: list[BankFileError] = []
    total = sum(1 for statement in chosen for _ in statement.iter("STMTTRN"))
    report("checking transactions", 0, total)
    for statement in chosen:
        currency = (_text(statement, "CURDEF") or "").upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise BankFileError(
                name,
                "line 1",
                f"the statement's CURDEF {quoted(currency)} is not a currency code",
            )
        for element in statement.iter("STMTTRN"):
            index = numbers[id(element)]
            try:
                lines.append(_line(source, element, index, account=account, currency=currency))
            except BankFileError as exc:
                problems.append(exc)
            checked = len(lines) + len(problems)
            if checked % PROGRESS_EVERY == 0 or checked == total:
                report("checking transactions", checked, total)
        closing = statement.find("LEDGERBAL")
        if closing is not None:
            try:
                found = _balance(source, closing, closings[id(closing)], account, currency)
            except BankFileError as exc:
                problems.append(exc)
            else:
                balances += [found] if found is not None else []
    if problems:
        raise BankFileError.combine(problems)
    return lines, balances


def _balance(
    source: _Source, element: ET.Element, index: int, account: str, currency: str
) -> StatementBalance | None:
    """The statement's ``LEDGERBAL`` (the ``index``-th of the file); None when it states no
    amount or no date (an empty ``<BALAMT>``: some banks send one), which is no balance rather
    than a broken file."""
    problems: list[BankFileError] = []
    where = f"line {source.tag_line('LEDGERBAL', index)}"

    def fail(tag: str, reason: str) -> None:
        problems.append(BankFileError(source.name, where, f"LEDGERBAL: {reason}"))

    written, dated = _text(element, "BALAMT"), _text(element, "DTASOF")
    if written is None or dated is None:
        return None
    as_of = _date_field(dated, fail, tag="DTASOF")
    minor = _amount_field(written, currency, fail, tag="BALAMT")
    if problems or as_of is None or minor is None:
        raise BankFileError.combine(problems)
    day, instant = as_of
    return StatementBalance(account, day, instant, minor, currency, where)


def _line(
    source: _Source, element: ET.Element, index: int, *, account: str, currency: str
) -> StatementLine:
    problems: list[BankFileError] = []

    def fail(tag: str, reason: str) -> None:
        where = f"line {source.field_line(index, tag)}"
        problems.append(BankFileError(source.name, where, reason))

    # one pass over the transaction's fields: the first of each tag (as ``find`` would give),
    # and every data element's text as the file wrote it (the last of a repeated tag)
    first: dict[str, str | None] = {}
    original: dict[str, str] = {}
    for child in element:
        text = child.text
        if child.tag not in first:
            first[child.tag] = (_unescape(text.strip()) or None) if text is not None else None
        if len(child) == 0:
            original[child.tag] = _unescape((text or "").strip())
    posted = _date_field(first.get("DTPOSTED"), fail)
    minor = _amount_field(first.get("TRNAMT"), currency, fail)
    if problems or posted is None or minor is None:
        raise BankFileError.combine(problems)
    posted_on, occurred_at = posted
    fitid = first.get("FITID")
    name = first.get("NAME") or _text(element, "PAYEE/NAME")
    memo = first.get("MEMO")
    return StatementLine(
        account=account,
        posted_on=posted_on,
        occurred_at=occurred_at,
        amount_minor=minor,
        currency=currency,
        description=name or memo or "",
        where=f"line {source.transaction_line(index)}",
        fitid=fitid,
        memo=memo,
        kind=first.get("TRNTYPE"),
        check_number=first.get("CHECKNUM"),
        original=original,
    )


def _date_field(
    text: str | None,
    fail: Callable[[str, str], None],
    *,
    tag: str = "DTPOSTED",
) -> tuple[date, datetime] | None:
    if text is None:
        fail(tag, "transaction has no DTPOSTED (posting date)")
        return None
    try:
        return _posted(text)
    except (OFXSpecError, ValueError) as exc:
        fail(tag, f"{tag} {quoted(text)} is not a valid date ({shortened(exc)})")
        return None


def _amount_field(
    text: str | None,
    currency: str,
    fail: Callable[[str, str], None],
    *,
    tag: str = "TRNAMT",
) -> int | None:
    if text is None:
        fail(tag, "transaction has no TRNAMT (amount)")
        return None
    try:
        amount = parse_decimal(text)
    except ValueError:
        fail(tag, f"{tag} {quoted(text)} is not a decimal amount")
        return None
    try:
        return minor_units(amount, currency, written=text)
    except ValueError as exc:
        fail(tag, f"{tag} {exc}")
        return None
