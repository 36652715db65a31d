"""``payroll.run`` events (a Gusto-style payroll JSON) → ``PayrollRun`` facts.

``data`` is one payroll as Gusto's API returns it: ``payroll_uuid``, ``check_date``,
``pay_period`` (``start_date``, ``end_date``), ``totals`` and ``employee_compensations``, each
with ``employee_uuid``, ``gross_pay``, ``net_pay``, ``taxes`` (``name``, ``employer``,
``amount``), ``benefits`` (``name``, ``employee_deduction``, ``company_contribution``) and
``deductions`` (``name``, ``amount``); amounts are decimal strings. Per employee: withholdings =
the employee taxes, benefits deductions = benefit deductions + other deductions, employer taxes =
the employer taxes. The run's totals are the sums, and must equal ``totals`` where it states them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from connectors.payroll.models import PayrollParser
from hub.domain.facts import Fact, PayrollEmployee, PayrollRun
from hub.domain.mapping import KindSchema, UnmappableValue, spec
from hub.domain.money import Money, total
from hub.spi.mapper import FactMapper, Handler, MapContext, SourceEvent, text
from hub.spi.parser import PayloadParser

SCHEMA = {
    "payroll_run": KindSchema(
        root="payroll",
        fields={
            "id": "text",
            "currency": "text",
            "date": "date",
            "period_start": "date",
            "period_end": "date",
        },
        defaults={
            "id": spec("payroll.payroll_uuid"),
            "currency": spec("payroll.currency", default="USD"),
            "date": spec("payroll.check_date", "iso_to_date"),
            "period_start": spec("payroll.pay_period.start_date", "iso_to_date"),
            "period_end": spec("payroll.pay_period.end_date", "iso_to_date"),
        },
        required=frozenset({"id", "currency", "date"}),
    )
}


def _sum(items: Any, field: str, currency: str, where: str | None = None) -> Money:
    amounts = [
        Money.parse(str(item.get(field) or "0"), currency)
        for item in items or []
        if where is None or bool(item.get("employer")) == (where == "employer")
    ]
    return total(amounts, currency)


def _employee(comp: dict[str, Any], currency: str) -> PayrollEmployee:
    taxes = comp.get("taxes")
    deductions = _sum(comp.get("benefits"), "employee_deduction", currency) + _sum(
        comp.get("deductions"), "amount", currency
    )
    return PayrollEmployee(
        employee_id=str(comp["employee_uuid"]),
        name=text(comp.get("employee_name")),
        gross_wages=Money.parse(comp["gross_pay"], currency),
        employee_withholdings=_sum(taxes, "amount", currency, "employee"),
        employer_taxes=_sum(taxes, "amount", currency, "employer"),
        benefits_deductions=deductions,
        net_pay=Money.parse(comp["net_pay"], currency),
    )


_STATED = {
    "gross_wages": "gross_pay",
    "net_pay": "net_pay",
    "employer_taxes": "employer_taxes",
    "employee_withholdings": "employee_taxes",
}


def _run(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    payroll = event.data
    f = ctx.fields("payroll_run", payroll)
    currency = f["currency"].upper()
    employees = [_employee(c, currency) for c in payroll.get("employee_compensations") or []]
    if not employees:
        raise UnmappableValue("the payroll has no employee_compensations")
    sums = {
        name: total([getattr(e, name) for e in employees], currency)
        for name in (*_STATED, "benefits_deductions")
    }
    stated = payroll.get("totals") or {}
    for name, key in _STATED.items():
        if stated.get(key) is not None and Decimal(str(stated[key])) != sums[name].major():
            raise UnmappableValue(
                f"totals.{key} is {stated[key]} but the employees add up to {sums[name].major()}"
            )
    return [
        PayrollRun(
            key=f"payroll:{f['id']}",
            business_date=f["date"],
            run_id=f["id"],
            currency=currency,
            pay_period_start=f["period_start"],
            pay_period_end=f["period_end"],
            employees=employees,
            **sums,
        )
    ]


class PayrollMapper(FactMapper):
    """Payroll runs."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = PayrollParser()
    handlers: ClassVar[Mapping[str, Handler]] = {"payroll.run": _run}
