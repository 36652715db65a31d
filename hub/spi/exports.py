"""Rows as files an analyst opens: CSV, and Excel workbooks whose cells are typed.

The same rows the HTTP routes answer as JSON (``hub.spi.reports``' shapes) are written here for
``ledgerhub export …`` and for a route asked with ``Accept: text/csv`` or ``Accept: XLSX``
(``answer``), so a file and the JSON always hold the same figures.

- CSV: a header line of the columns, then each row as the JSON has it (amounts in integer minor
  units under their ``…_minor`` names, dates ``YYYY-MM-DD``, booleans ``True``/``False``).
- Excel (openpyxl): one sheet, a bold header row frozen above the rows; a date is a date cell
  (``yyyy-mm-dd``); an amount (a ``…_minor`` column, in the row's ``currency``) is a number in
  major units with the currency's decimals (USD ``2.50``, JPY ``250``, KWD ``0.250``), under the
  column's name without ``_minor``; a boolean is a boolean; an empty value an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Literal

from aiohttp import web

from hub.domain.money import exponent, to_major

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Format = Literal["csv", "xlsx"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx")
MEDIA_TYPES: dict[Format, str] = {"csv": CSV, "xlsx": XLSX}

MINOR = "_minor"
"""The suffix of an amount column: integer minor units of the row's ``currency``."""


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header line of ``columns`` (other keys are left out)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def heading(column: str) -> str:
    """A column's header in a workbook: an amount's name without ``_minor`` (its cells hold
    major units)."""
    return column.removesuffix(MINOR) if column.endswith(MINOR) else column


def amount_format(currency: str) -> str:
    """The number format showing ``currency``'s decimals (``#,##0.00`` for USD)."""
    places = exponent(currency)
    return "#,##0" + ("." + "0" * places if places else "")


def to_xlsx(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, sheet: str) -> bytes:
    """``rows`` as an Excel workbook of one sheet named ``sheet`` (typed cells, see the module
    docstring); an amount column needs a ``currency`` in its row."""
    # imported here: every command and the API import this module, few write a workbook
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    ws = book.active
    assert ws is not None  # a new workbook has its one sheet
    ws.title = sheet[:31]  # Excel's limit on a sheet's name
    ws.append([heading(column) for column in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    widths = [len(heading(column)) for column in columns]
    for number, row in enumerate(rows, start=2):
        for index, column in enumerate(columns):
            cell = ws.cell(row=number, column=index + 1)
            value = row.get(column)
            if value is None:
                continue
            if column.endswith(MINOR) and isinstance(value, int) and not isinstance(value, bool):
                currency = str(row["currency"])
                cell.value = to_major(value, currency)
                cell.number_format = amount_format(currency)
            elif isinstance(value, datetime):
                cell.value = value
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(value, date):
                cell.value = value
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(value, bool | int | float | str):
                cell.value = value
            else:
                cell.value = str(value)
            widths[index] = max(widths[index], min(len(str(value)), 60))
    for index, width in enumerate(widths):
        ws.column_dimensions[get_column_letter(index + 1)].width = width + 2
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], form: Format, *, sheet: str
) -> bytes:
    """``rows`` as a file of format ``form`` (``csv`` as UTF-8, or ``xlsx``)."""
    if form == "xlsx":
        return to_xlsx(rows, columns, sheet=sheet)
    return to_csv(rows, columns).encode()


def wanted(accept: str) -> Format | None:
    """The file format an ``Accept`` header asks for (Excel before CSV when it names both), or
    None for JSON."""
    if XLSX in accept:
        return "xlsx"
    if CSV in accept:
        return "csv"
    return None


def file_response(
    request: web.Request, rows: Sequence[dict[str, Any]], columns: Sequence[str], *, sheet: str
) -> web.Response | None:
    """``rows`` as the file the request's ``Accept`` asks for (``text/csv`` or ``XLSX``), a
    download named after ``sheet``; None when it asks for JSON (the route answers that)."""
    form = wanted(request.headers.get("Accept", ""))
    if form is None:
        return None
    return web.Response(
        body=render(rows, columns, form, sheet=sheet),
        content_type=MEDIA_TYPES[form],
        charset="utf-8" if form == "csv" else None,
        headers={"Content-Disposition": f'attachment; filename="{sheet}.{form}"'},
    )
