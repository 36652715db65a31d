"""Typed models of a Gusto-style payroll (amounts: decimal strings)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import ClassVar

from pydantic import Field

from hub.spi.parser import DecimalString, Parse, PayloadParser, ProviderModel, model


class Tax(ProviderModel):
    """A tax on one paycheck: the employer's or withheld from the employee."""

    name: str
    employer: bool
    amount: DecimalString


class Benefit(ProviderModel):
    """A benefit: what the employee has deducted, what the company adds."""

    name: str
    employee_deduction: DecimalString = "0"
    company_contribution: DecimalString = "0"


class Deduction(ProviderModel):
    """Another deduction from pay (garnishment, …)."""

    name: str
    amount: DecimalString


class EmployeeCompensation(ProviderModel):
    """One employee's paycheck."""

    employee_uuid: str
    gross_pay: DecimalString
    net_pay: DecimalString
    taxes: list[Tax] = Field(default_factory=list)
    benefits: list[Benefit] = Field(default_factory=list)
    deductions: list[Deduction] = Field(default_factory=list)


class Payroll(ProviderModel):
    """A processed payroll."""

    payroll_uuid: str
    check_date: date
    employee_compensations: list[EmployeeCompensation] = Field(min_length=1)
    totals: dict[str, DecimalString | None] = Field(default_factory=dict)


class PayrollParser(PayloadParser):
    """``payroll.run`` → ``Payroll``."""

    parsers: ClassVar[Mapping[str, Parse]] = {"payroll.run": model(Payroll)}
