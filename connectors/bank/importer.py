"""The bank connector's ``FileImporter``: OFX/QFX, CSV (with a column mapping) and Plaid
transactions JSON into ``bank.line`` records, identified by FITID or the stable key of
``connectors.bank.lines.external_ids``; and an OFX statement's closing balance (``LEDGERBAL``)
into one ``bank.balance`` record, identified by account and as-of date."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import ClassVar

from connectors.bank.csv_format import CsvMapping, load_mapping, parse_csv
from connectors.bank.lines import (
    BALANCE_EVENT_TYPE,
    EVENT_TYPE,
    StatementBalance,
    StatementLine,
    external_ids,
)
from connectors.bank.ofx import parse_ofx, parse_ofx_statement
from connectors.bank.plaid import parse_plaid
from hub.spi.importer import FileImporter, ImportedRecord, ImportOptions


class BankImporter(FileImporter):
    """Bank statements: ``ofx`` (also QFX, 1.x and 2.x), ``csv``, ``plaid``."""

    formats: ClassVar[tuple[str, ...]] = ("ofx", "csv", "plaid")

    def detect(self, name: str, data: bytes) -> str:
        """The format by extension (.ofx, .qfx, .csv, .json), else by the first bytes."""
        suffix = PurePath(name).suffix.lower()
        if suffix in (".ofx", ".qfx"):
            return "ofx"
        if suffix == ".csv":
            return "csv"
        if suffix == ".json":
            return "plaid"
        head = data[:1024].lstrip().upper()
        if head.startswith((b"OFXHEADER", b"<?XML", b"<OFX")):
            return "ofx"
        return "plaid" if head.startswith(b"{") else "csv"

    def load_mapping(self, path: Path) -> CsvMapping:
        """The ``[csv]`` table of a CSV column mapping file (``connectors.bank.csv_format``)."""
        return load_mapping(path)

    def lines(
        self, name: str, data: bytes, *, file_format: str, options: ImportOptions
    ) -> list[StatementLine]:
        """The file's statement lines; ``BankFileError`` naming the line and reason."""
        if file_format == "ofx":
            return parse_ofx(
                name,
                data,
                account=options.account,
                select=options.select,
                report=options.progress,
            )
        if file_format == "csv":
            mapping = options.mapping if options.mapping is not None else CsvMapping()
            if not isinstance(mapping, CsvMapping):
                raise TypeError(f"a CSV mapping must be a CsvMapping, not {type(mapping)}")
            return parse_csv(
                name, data, account=options.account, mapping=mapping, zone=options.zone
            )
        if file_format == "plaid":
            return parse_plaid(
                name, data, account=options.account, zone=options.zone, select=options.select
            )
        raise ValueError(f"unknown bank file format {file_format!r} (known: {self.formats})")

    def read(
        self, name: str, data: bytes, *, file_format: str, options: ImportOptions
    ) -> list[ImportedRecord]:
        """One ``bank.line`` record per statement line, then one ``bank.balance`` record for
        an OFX statement's closing balance (CSV and Plaid files state none)."""
        balances: list[StatementBalance] = []
        if file_format == "ofx":
            lines, balances = parse_ofx_statement(
                name,
                data,
                account=options.account,
                select=options.select,
                report=options.progress,
            )
        else:
            lines = self.lines(name, data, file_format=file_format, options=options)
        records = [
            ImportedRecord(
                external_id=external_id,
                type=EVENT_TYPE,
                occurred_at=line.occurred_at,
                data=line.data(file_format),
                where=line.where,
            )
            for line, external_id in zip(lines, external_ids(lines), strict=True)
        ]
        records += [
            ImportedRecord(
                external_id=balance.external_id,
                type=BALANCE_EVENT_TYPE,
                occurred_at=balance.occurred_at,
                data=balance.data(file_format),
                where=balance.where,
            )
            for balance in balances
        ]
        return records
