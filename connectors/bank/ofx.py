"""OFX and QFX statements, 1.x (SGML) and 2.x (XML), read with ofxtools.

ofxtools parses the header and the tag soup into an element tree; the statement lines are then
read from that tree field by field with ofxtools' own type converters. Its full model conversion
is not used because real bank files routinely break the letter of the spec in ways that do not
matter here (a 10-digit BANKID, a missing sign-on block), and one bad field must name its line.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from xml.sax import saxutils

from ofxtools.header import OFXHeaderError, parse_header
from ofxtools.Parser import ParseError, TreeBuilder
from ofxtools.Types import DateTime as OfxDateTime
from ofxtools.Types import OFXSpecError

from connectors.bank.lines import BankFileError, StatementLine, minor_units, quoted, shortened
from hub.domain.money import parse_decimal

_STATEMENTS = ("STMTRS", "CCSTMTRS")
_TRN_OPEN = re.compile(rb"<STMTTRN>", re.IGNORECASE)
_TRN_CLOSE = re.compile(rb"</STMTTRN>", re.IGNORECASE)
_BODY = re.compile(rb"<OFX>", re.IGNORECASE)
_POSITION = re.compile(r"position=\[(\d+):")
_POSITION_NOTE = re.compile(r" - position=\[\d+:\d+\]$")
_ENTITIES = {"&nbsp;": " ", "&apos;": "'", "&quot;": '"'}
"""Besides ``&amp;``, ``&lt;`` and ``&gt;`` (OFX section 2.3), as ofxtools' own String reads."""


@dataclass(frozen=True)
class _Source:
    """The file's bytes, and where things are in them (each index built once, on first use)."""

    name: str
    data: bytes

    @cached_property
    def _line_starts(self) -> list[int]:
        return [m.end() for m in re.finditer(rb"\n", self.data)]

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

    def field_line(self, transaction: int, tag: str) -> int:
        """The line of ``tag`` in the ``transaction``-th STMTTRN (its opening line if absent)."""
        if transaction >= len(self._transactions):
            return 1
        start, end = self._transactions[transaction]
        found = re.compile(rb"<" + re.escape(tag.encode()) + rb">", re.IGNORECASE).search(
            self.data, start, end
        )
        return self.line_at(found.start() if found else start)

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
    ofxtools reports with its position) rather than ElementTree's ``IndexError``."""

    def end(self, tag: str) -> ET.Element:
        try:
            return super().end(tag)
        except IndexError:
            raise ParseError(f"</{tag}> closes nothing") from None


def _tree(source: _Source) -> ET.Element:
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
    builder = _Builder()
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


def _unescape(text: str) -> str:
    return saxutils.unescape(text, _ENTITIES)


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return _unescape(found.text.strip()) or None


def _posted(text: str) -> tuple[date, datetime]:
    """The business date as written (before any UTC shift), and the aware instant."""
    try:
        instant = OfxDateTime().convert(text)
    except OverflowError:  # 00010101000000[+14]: no such instant in UTC
        raise ValueError("out of the range of dates") from None
    if not isinstance(instant, datetime):
        raise ValueError("not a date")
    return date(int(text[0:4]), int(text[4:6]), int(text[6:8])), instant


def parse_ofx(
    name: str, data: bytes, *, account: str, select: str | None = None
) -> list[StatementLine]:
    """Every transaction of the file's statement (``select``: the ACCTID when it holds several)."""
    source = _Source(name, data)
    root = _tree(source)
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
    lines = []
    problems: list[BankFileError] = []
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
    if problems:
        raise BankFileError.combine(problems)
    return lines


def _line(
    source: _Source, element: ET.Element, index: int, *, account: str, currency: str
) -> StatementLine:
    problems: list[BankFileError] = []

    def fail(tag: str, reason: str) -> None:
        where = f"line {source.field_line(index, tag)}"
        problems.append(BankFileError(source.name, where, reason))

    posted = _date_field(_text(element, "DTPOSTED"), fail)
    minor = _amount_field(_text(element, "TRNAMT"), currency, fail)
    if problems or posted is None or minor is None:
        raise BankFileError.combine(problems)
    posted_on, occurred_at = posted
    fitid = _text(element, "FITID")
    name = _text(element, "NAME") or _text(element, "PAYEE/NAME")
    memo = _text(element, "MEMO")
    original = {
        child.tag: _unescape((child.text or "").strip()) for child in element if len(child) == 0
    }
    return StatementLine(
        account=account,
        posted_on=posted_on,
        occurred_at=occurred_at,
        amount_minor=minor,
        currency=currency,
        description=name or memo or "",
        where=f"line {source.field_line(index, 'STMTTRN')}",
        fitid=fitid,
        memo=memo,
        kind=_text(element, "TRNTYPE"),
        check_number=_text(element, "CHECKNUM"),
        original=original,
    )


def _date_field(text: str | None, fail: Callable[[str, str], None]) -> tuple[date, datetime] | None:
    if text is None:
        fail("DTPOSTED", "transaction has no DTPOSTED (posting date)")
        return None
    try:
        return _posted(text)
    except (OFXSpecError, ValueError) as exc:
        fail("DTPOSTED", f"DTPOSTED {quoted(text)} is not a valid date ({shortened(exc)})")
        return None


def _amount_field(text: str | None, currency: str, fail: Callable[[str, str], None]) -> int | None:
    if text is None:
        fail("TRNAMT", "transaction has no TRNAMT (amount)")
        return None
    try:
        amount = parse_decimal(text)
    except ValueError:
        fail("TRNAMT", f"TRNAMT {quoted(text)} is not a decimal amount")
        return None
    try:
        return minor_units(amount, currency, written=text)
    except ValueError as exc:
        fail("TRNAMT", f"TRNAMT {exc}")
        return None
