"""Payroll: runs exported from a payroll provider (Gusto-style JSON), pushed as ``payroll.run``
events through ``POST /v1/events`` (no webhooks); see ``connectors.payroll.mapping``."""

from __future__ import annotations

from typing import ClassVar

from connectors.payroll.mapping import PayrollMapper
from hub.spi.connector import Connector
from hub.spi.health import DAY, Freshness
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser


class PayrollConnector(Connector):
    """Payroll runs: gross wages, withholdings, employer taxes, deductions, net pay."""

    name = "payroll"
    version = "1"
    event_types = ("payroll.run",)
    freshness: ClassVar[Freshness | None] = Freshness(35 * DAY, ("payroll.*",), what="payroll run")
    parser: ClassVar[PayloadParser | None] = PayrollMapper.parser
    mapper: ClassVar[FactMapper | None] = PayrollMapper()
