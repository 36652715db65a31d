"""OFX and QFX statements, 1.x (SGML) and 2.x (XML), read with ofxtools.

ofxtools parses the header and the tag soup into an element tree; the statement lines are then
read from that tree field by field with ofxtools' own type converters. Its full model conversion
is not used because real bank files routinely break the letter of the spec in ways that do not
matter here (a 10-digit BANKID, a missing sign-on block), and one bad field must name its line.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from ofxtools.header import OFXHeaderError, parse_header
from ofxtools.Parser import TreeBuilder
from ofxtools.Types import DateTime as OfxDateTime
from ofxtools.Types import OFXSpecError

from connectors.bank.lines import BankFileError, StatementLine
from hub.domain.money import parse_decimal, to_minor

_STATEMENTS = ("STMTRS", "CCSTMTRS")
_TRN_OPEN = re.compile(rb"<STMTTRN>", re.IGNORECASE)


@dataclass(frozen=True)
class _Source:
    name: str
    data: bytes

    def line_at(self, offset: int) -> int:
        return self.data.count(b"\n", 0, offset) + 1

    def field_line(self, transaction: int, tag: str) -> int:
        """The line of ``tag`` in the ``transaction``-th STMTTRN (its opening line if absent)."""
        opens = [m.start() for m in _TRN_OPEN.finditer(self.data)]
        if transaction >= len(opens):
            return 1
        start = opens[transaction]
        end = self.data.upper().find(b"</STMTTRN>", start)
        found = re.compile(rb"<" + tag.encode() + rb">", re.IGNORECASE).search(
            self.data, start, end if end != -1 else len(self.data)
        )
        return self.line_at(found.start() if found else start)


def _tree(source: _Source) -> ET.Element:
    import io

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
    builder = TreeBuilder()
    try:
        builder.feed(message)
        root = builder.close()
    except (SyntaxError, ValueError) as exc:
        raise BankFileError(source.name, "line 1", f"malformed OFX: {exc}") from exc
    if not isinstance(root, ET.Element):
        raise BankFileError(source.name, "line 1", "malformed OFX: no document element")
    return root


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _posted(text: str) -> tuple[date, datetime]:
    """The business date as written (before any UTC shift), and the aware instant."""
    instant = OfxDateTime().convert(text)
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
    if select is not None:
        chosen = [s for s, acct in zip(statements, acct_ids, strict=True) if acct == select]
        if not chosen:
            raise BankFileError(
                name, "line 1", f"no statement for account {select}; it has {', '.join(acct_ids)}"
            )
    elif len(statements) > 1:
        raise BankFileError(
            name,
            "line 1",
            f"the file holds {len(statements)} accounts ({', '.join(acct_ids)}): "
            "choose one with --statement-account",
        )
    else:
        chosen = statements
    all_transactions = list(root.iter("STMTTRN"))
    lines = []
    problems: list[BankFileError] = []
    for statement in chosen:
        currency = (_text(statement, "CURDEF") or "").upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise BankFileError(
                name, "line 1", f"the statement's CURDEF {currency!r} is not a currency code"
            )
        for element in statement.iter("STMTTRN"):
            index = next(i for i, e in enumerate(all_transactions) if e is element)
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
    original = {child.tag: (child.text or "").strip() for child in element if len(child) == 0}
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
        fail("DTPOSTED", f"DTPOSTED {text!r} is not a valid date ({exc})")
        return None


def _amount_field(text: str | None, currency: str, fail: Callable[[str, str], None]) -> int | None:
    if text is None:
        fail("TRNAMT", "transaction has no TRNAMT (amount)")
        return None
    try:
        return to_minor(parse_decimal(text), currency)
    except ValueError as exc:
        fail("TRNAMT", f"TRNAMT {text!r} is not a decimal amount ({exc})")
        return None
