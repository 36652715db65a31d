"""The file importer a connector puts in its ``importer`` slot: a statement file (OFX, CSV with
a column mapping, a JSON export, …) read into the records it holds, one event each.

The hub's import use case (``hub.usecases.file_import``, behind ``ledgerhub import KIND``) finds
the importer through the registry (``connector(KIND).importer``), reads the file's bytes, hands
them to ``read`` and appends every record in one batch (all or nothing), with the file's name,
SHA-256 and each record's ``where`` in the event's ``meta``. The importer decides everything
about the file itself:

- ``formats``: what it reads (the choices of ``--format``), and ``detect`` for when none is given;
- ``load_mapping``: the mapping file of ``--mapping`` (a CSV column mapping), checked before the
  statement is read, with the file and key that are wrong;
- ``read``: the records, each with its external id: the identity that makes re-importing an
  overlapping file add only what is new (the bank's FITID, else a stable key over the record's
  content). A broken file raises ``ImportFileError`` naming the line (or item) and the reason,
  every problem found in ``errors``; nothing of it is stored. While it reads, it may tell how
  far it got through ``ImportOptions.progress`` (the CLI draws a progress bar from it); an
  importer that does not is shown from the moment its records are turned into events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

from hub.errors import ConfigError, InvalidInput

UTC_ZONE = ZoneInfo("UTC")

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``: the import is at ``done`` of ``total`` in ``stage`` (what is
being counted is the stage's business, e.g. ``"reading lines"``; total None: not known)."""


def _silent(stage: str, done: int, total: int | None) -> None:
    """Progress nobody watches."""


class ImportFileError(InvalidInput):
    """A file that cannot be imported: ``FILE:WHERE: REASON``, ``where`` being ``line 42`` or
    an item (``transactions[3]``); ``errors`` holds ``{"field": where, "message": reason}``
    for every problem."""

    def __init__(self, file: str, where: str, reason: str) -> None:
        super().__init__(f"{file}:{where}: {reason}", errors=[{"field": where, "message": reason}])

    @classmethod
    def combine(cls, problems: Sequence[ImportFileError]) -> Self:
        """One error naming the first problem and counting the rest (all kept in ``errors``)."""
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        combined = cls.__new__(cls)
        InvalidInput.__init__(
            combined, first.detail + more, errors=[e for p in problems for e in p.errors]
        )
        return combined


@dataclass(frozen=True)
class ImportOptions:
    """What the person importing says about the file, besides its format."""

    account: str
    """The connection's name: the records go to source ``<connector>:<account>``."""
    zone: ZoneInfo = UTC_ZONE
    """The tenant's time zone: a record dated without a time happened at midnight there."""
    mapping: Any = None
    """What ``FileImporter.load_mapping`` made of ``--mapping FILE``; None: the defaults."""
    select: str | None = None
    """The account in the file to import when it holds several (``--statement-account``)."""
    progress: Progress = _silent
    """Called now and then while the file is read, for a progress display (never required:
    an importer may call it as often as is cheap, or not at all)."""


@dataclass(frozen=True)
class ImportedRecord:
    """One record of an imported file, before the hub adds tenant, source and ``meta``."""

    external_id: str
    """Its identity in the log: re-importing the same record is a duplicate."""
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    where: str
    """Where in the file: ``line 42`` or ``transactions[3]``."""


class FileImporter(ABC):
    """A kind of file a connector imports: subclass, set it as the connector's ``importer``."""

    formats: ClassVar[tuple[str, ...]] = ()
    """The formats it reads (``ofx``, ``csv``, …): the choices of ``--format``."""

    @abstractmethod
    def detect(self, name: str, data: bytes) -> str:
        """The format of the file called ``name`` holding ``data`` (one of ``formats``)."""

    def load_mapping(self, path: Path) -> Any:
        """The mapping file ``path`` (``--mapping``), parsed and checked, for
        ``ImportOptions.mapping``; ``ConfigError`` naming the file and what is wrong.

        By default an importer takes no mapping file."""
        raise ConfigError(f"{path}: this importer takes no mapping file")

    @abstractmethod
    def read(
        self, name: str, data: bytes, *, file_format: str, options: ImportOptions
    ) -> list[ImportedRecord]:
        """Every record of the file called ``name`` holding ``data``, in file order;
        ``ImportFileError`` naming the line and reason (every problem in ``errors``) if any
        part of it cannot be imported."""
