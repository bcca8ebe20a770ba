"""PMPM monthly coding: a member-month's documented activity -> monthly code(s).

Monthly codes carry "at least" descriptors, so there is no midpoint rounding (domain.md §1-2):
the highest threshold reached wins, and its add-on counts each further *full* block.
Lines are priced on the month's last day, the usual date of service for monthly codes.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date

from services.billing.domain.coding_terms import (
    CodingStatus,
    CodingTerms,
    MonthlyCode,
    MonthlyCodingResult,
    MonthlyLine,
    Reason,
    ReasonCode,
)
from shared.money import format_cents


def code_member_month(
    terms: CodingTerms,
    month_minutes: Iterable[int],
    month_interventions: Iterable[int],
    year: int,
    month: int,
) -> MonthlyCodingResult:
    """Total one member's month and code it.

    ``billable`` means the member-month qualifies: the activity requirement (if any) is met
    and, when the contract lists monthly codes, at least one threshold is reached.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month}")
    minutes = _total(month_minutes, "minutes")
    interventions = _total(month_interventions, "interventions")
    period = f"{year:04d}-{month:02d}"
    reasons: list[Reason] = []
    text = [f"{period}: {minutes} min and {_interventions(interventions)} documented."]

    activity_met = _activity(terms, minutes, interventions, period, reasons, text)

    lines: tuple[MonthlyLine, ...] = ()
    if terms.monthly_codes:
        code = _highest_reached(terms.monthly_codes, minutes)
        if code is None:
            lowest = min(terms.monthly_codes, key=_threshold)
            reasons.append(
                Reason(
                    ReasonCode.BELOW_MONTHLY_THRESHOLD,
                    f"{minutes} min in {period}; the lowest monthly code {lowest.code} needs "
                    f"at least {lowest.min_minutes}",
                    f"document the remaining {lowest.min_minutes - minutes} min if they were "
                    f"spent in {period}; otherwise no monthly code is billable",
                    CodingStatus.NOT_BILLABLE,
                )
            )
            text.append(f"No monthly code: {lowest.code} needs at least {lowest.min_minutes} min.")
        else:
            lines = _price(terms, _code_lines(code, minutes, text), year, month, reasons, text)

    status = CodingStatus.BILLABLE
    for reason in reasons:
        if reason.status is CodingStatus.NOT_BILLABLE:
            status = CodingStatus.NOT_BILLABLE
            break
        status = CodingStatus.HELD
    codes = ", ".join(dict.fromkeys(r.code for r in reasons))
    text.append(f"Status: {status} ({codes})." if reasons else f"Status: {status}.")
    text.append(f"Rule version: {terms.rule_version}.")
    return MonthlyCodingResult(
        year=year,
        month=month,
        status=status,
        reasons=tuple(reasons),
        lines=lines,
        total_minutes=minutes,
        total_interventions=interventions,
        activity_met=activity_met,
        rationale="\n".join(text),
        rule_version=terms.rule_version,
    )


def _total(values: Iterable[int], what: str) -> int:
    total = 0
    for value in values:
        if value < 0:
            raise ValueError(f"negative {what} in a member-month: {value}")
        total += value
    return total


def _activity(
    terms: CodingTerms,
    minutes: int,
    interventions: int,
    period: str,
    reasons: list[Reason],
    text: list[str],
) -> bool:
    requirement = terms.pmpm_activity
    if requirement is None:
        return True
    needed: list[str] = []
    short: list[str] = []
    todo: list[str] = []
    if requirement.min_minutes is not None:
        needed.append(f"at least {requirement.min_minutes} min")
        if minutes < requirement.min_minutes:
            short.append(f"{minutes} of {requirement.min_minutes} required minutes")
            todo.append(f"{requirement.min_minutes - minutes} min")
    if requirement.min_interventions is not None:
        needed.append(f"at least {_interventions(requirement.min_interventions)}")
        if interventions < requirement.min_interventions:
            short.append(
                f"{interventions} of {requirement.min_interventions} required interventions"
            )
            todo.append(_interventions(requirement.min_interventions - interventions))
    rule = ", ".join(needed) or "none set"
    if not short:
        text.append(f"Activity requirement ({rule}): met.")
        return True
    shortfall = "; ".join(short)
    reasons.append(
        Reason(
            ReasonCode.ACTIVITY_REQUIREMENT_NOT_MET,
            f"{period}: {shortfall}",
            f"document the missing {' and '.join(todo)} for {period} if the work was done; "
            "otherwise the member-month does not qualify",
            CodingStatus.NOT_BILLABLE,
        )
    )
    text.append(f"Activity requirement ({rule}): not met, {shortfall}.")
    return False


def _interventions(count: int) -> str:
    return f"{count} intervention" if count == 1 else f"{count} interventions"


def _threshold(code: MonthlyCode) -> int:
    return code.min_minutes


def _highest_reached(codes: tuple[MonthlyCode, ...], minutes: int) -> MonthlyCode | None:
    best: MonthlyCode | None = None
    for code in codes:
        if code.min_minutes <= minutes and (best is None or code.min_minutes > best.min_minutes):
            best = code
    return best


def _code_lines(code: MonthlyCode, minutes: int, text: list[str]) -> list[tuple[str, int]]:
    lines = [(code.code, 1)]
    head = f"{code.code} x1 (at least {code.min_minutes} min; no rounding)"
    add_on = code.add_on
    if add_on is None:
        text.append(f"{head}.")
        return lines
    beyond = minutes - code.min_minutes
    earned = beyond // add_on.each_additional_minutes
    cap = add_on.max_units
    units = earned if cap is None else min(earned, cap)
    rule = f"one {add_on.code} per further full {add_on.each_additional_minutes} min"
    if cap is not None:
        rule += f", at most {cap}"
    if units:
        lines.append((add_on.code, units))
        count = f"{add_on.code} x{units}"
        if units < earned:
            count += f" ({earned} earned)"
    else:
        count = f"no {add_on.code}"
    text.append(f"{head}; {beyond} min beyond {code.min_minutes}; {count}; {rule}.")
    return lines


def _price(
    terms: CodingTerms,
    coded: list[tuple[str, int]],
    year: int,
    month: int,
    reasons: list[Reason],
    text: list[str],
) -> tuple[MonthlyLine, ...]:
    day = date(year, month, calendar.monthrange(year, month)[1])
    lines: list[MonthlyLine] = []
    parts: list[str] = []
    for code, units in coded:
        entry = terms.fee_for(code, None, day)
        if entry is None:
            reasons.append(
                Reason(
                    ReasonCode.NO_FEE_SCHEDULE,
                    f"no fee schedule entry for {code} in force on {day.isoformat()}",
                    f"add a fee schedule entry for {code} covering {day.isoformat()} "
                    f"to contract {terms.rule_version!r}",
                    CodingStatus.HELD,
                )
            )
            lines.append(MonthlyLine(code, units, 0, 0))
            parts.append(f"{code} x{units}: not priced")
            continue
        line = MonthlyLine(code, units, entry.charge_cents * units, entry.allowed_cents * units)
        lines.append(line)
        parts.append(
            f"{code} x{units}: charge {format_cents(line.charge_cents)}, "
            f"expected {format_cents(line.expected_cents)}"
        )
    charge = sum(line.charge_cents for line in lines)
    expected = sum(line.expected_cents for line in lines)
    text.append(
        f"Priced on {day.isoformat()}: {'; '.join(parts)}; total charge {format_cents(charge)}, "
        f"expected {format_cents(expected)}."
    )
    return tuple(lines)
