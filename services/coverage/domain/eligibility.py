"""Eligibility of a patient for one service on one date of service.

Spans are tried in coordination-of-benefits order (primary, secondary, tertiary). A span that
covers the DOS but fails a contract rule (window, opt-out, excluded population, modality,
frequency limit) falls through to the next priority, and its reasons are kept so a biller can
see why the primary was not billed. Everything is decided from arguments: the spans (full
history is fine, it is collapsed with `as_known_at`), the contracts, and prior services the
billing context supplies through its port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from services.coverage.domain.contracts import (
    ContractVersion,
    FrequencyLimit,
    LimitPeriod,
    Modality,
    PatientLocation,
    ServiceType,
    TelehealthRule,
    version_in_force,
)
from services.coverage.domain.spans import CoverageSpan, as_known_at, opt_out_for

_ONE_DAY = timedelta(days=1)
_ROLLING_BACK = timedelta(days=364)


class ReasonCode(StrEnum):
    NO_COVERAGE_ON_DOS = "NO_COVERAGE_ON_DOS"
    UNKNOWN_CONTRACT = "UNKNOWN_CONTRACT"
    OUTSIDE_CONTRACT_WINDOW = "OUTSIDE_CONTRACT_WINDOW"
    OPTED_OUT = "OPTED_OUT"
    EXCLUDED_POPULATION = "EXCLUDED_POPULATION"
    MODALITY_NOT_COVERED = "MODALITY_NOT_COVERED"
    FREQUENCY_LIMIT_REACHED = "FREQUENCY_LIMIT_REACHED"


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    message: str
    fix: str
    span_id: str | None = None


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Inclusive dates; `end=None` is open-ended."""

    start: date
    end: date | None

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class PriorService:
    """A service already billed for the patient, as reported by the billing context.

    It counts against a span's limits when `contract_id` matches the span's contract, or, when
    the history only knows the payer, when `payer_id` matches. Limits are the payer's, per
    member, so services billed under any TIN count; `tin` is carried for the new/established
    look-back, which is per billing entity. Pass only services that stand (not voided,
    not rejected).
    """

    dos: date
    service_type: ServiceType
    tin: str
    contract_id: str | None = None
    payer_id: str | None = None


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """Usage of one frequency limit in the period containing the DOS; `used` includes the
    service being checked, so `used > max_count` means this service would exceed the limit."""

    limit: FrequencyLimit
    period_start: date
    period_end: date
    used: int
    max_count: int

    @property
    def exceeded(self) -> bool:
        return self.used > self.max_count

    @property
    def period_label(self) -> str:
        return period_label(self.limit.period, self.period_start, self.period_end)

    @property
    def text(self) -> str:
        """E.g. 'CMR 1 of 1 used in plan year 2026'."""
        return (
            f"{self.limit.service_type} {self.used} of {self.max_count} used in {self.period_label}"
        )


@dataclass(frozen=True, slots=True)
class SpanRejection:
    """A span that covered the DOS but could not be billed; `usage` shows the limits behind a
    FREQUENCY_LIMIT_REACHED (empty when the contract could not be found)."""

    span: CoverageSpan
    reasons: tuple[Reason, ...]
    usage: tuple[LimitUsage, ...] = ()


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The answer. When eligible, `span`, `contract_version` and `window` say what to bill and
    the dates over which the same answer holds (span ∩ contract version, ended by an opt-out);
    `usage` is the chosen span's limits and `reasons` is empty. When not, `reasons` lists every
    reason from every span tried, and each rejection carries its own usage."""

    eligible: bool
    dos: date
    service_type: ServiceType
    span: CoverageSpan | None
    contract_version: ContractVersion | None
    window: DateWindow | None
    usage: tuple[LimitUsage, ...]
    reasons: tuple[Reason, ...]
    rejected: tuple[SpanRejection, ...]
    # POS and modifier to bill, when a modality and patient location were given.
    routing: TelehealthRule | None = None


def _priority_order(span: CoverageSpan) -> tuple[int, int]:
    # Same priority twice (e.g. a renewal overlapping the old span): the newer span wins.
    return (span.priority.rank, -span.effective_from.toordinal())


@lru_cache(maxsize=8192)
def period_for(period: LimitPeriod, dos: date, plan_year_start_month: int) -> tuple[date, date]:
    """The inclusive period of kind `period` that contains `dos`.

    Cached because a batch prices many services on the same few dates."""
    if period is LimitPeriod.ROLLING_365:
        return dos - _ROLLING_BACK, dos
    if period is LimitPeriod.CALENDAR_MONTH:
        start = dos.replace(day=1)
        return start, _add_months(start, 1) - _ONE_DAY
    first = plan_year_start_month
    year = dos.year if dos.month >= first else dos.year - 1
    year_start = date(year, first, 1)
    if period is LimitPeriod.PLAN_YEAR:
        return year_start, _add_months(year_start, 12) - _ONE_DAY
    quarter = ((dos.year - year) * 12 + dos.month - first) // 3
    start = _add_months(year_start, quarter * 3)
    return start, _add_months(start, 3) - _ONE_DAY


def period_label(period: LimitPeriod, start: date, end: date) -> str:
    """Human words for a period: 'plan year 2026', '2026 Q2', 'month 2026-03', or dates when
    the plan year does not follow the calendar."""
    if period is LimitPeriod.ROLLING_365:
        return f"the 365 days {start.isoformat()} to {end.isoformat()}"
    if period is LimitPeriod.CALENDAR_MONTH:
        return f"month {start.year}-{start.month:02d}"
    if period is LimitPeriod.PLAN_YEAR:
        if start.month == 1:
            return f"plan year {start.year}"
        return f"plan year {start.isoformat()} to {end.isoformat()}"
    # A plan quarter starting in Jan/Apr/Jul/Oct is also a calendar quarter.
    if start.month % 3 == 1:
        return f"{start.year} Q{start.month // 3 + 1}"
    return f"plan quarter {start.isoformat()} to {end.isoformat()}"


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _usage(
    span: CoverageSpan,
    version: ContractVersion,
    dos: date,
    service_type: ServiceType,
    prior_services: Sequence[PriorService],
) -> list[LimitUsage]:
    terms = version.terms
    usages: list[LimitUsage] = []
    for limit in terms.frequency_limits:
        if not limit.service_type.matches(service_type):
            continue
        start, end = period_for(limit.period, dos, terms.plan_year_start_month)
        used = 1
        for prior in prior_services:
            if (
                start <= prior.dos <= end
                and limit.service_type.matches(prior.service_type)
                and (
                    prior.contract_id == span.contract_id
                    if prior.contract_id is not None
                    else prior.payer_id == span.payer_id
                )
            ):
                used += 1
        usages.append(LimitUsage(limit, start, end, used, limit.max_count))
    return usages


def _check_span(
    span: CoverageSpan,
    spans: Sequence[CoverageSpan],
    versions: Sequence[ContractVersion] | None,
    dos: date,
    service_type: ServiceType,
    prior_services: Sequence[PriorService],
    modality: Modality | None,
    location: PatientLocation | None,
) -> tuple[list[Reason], ContractVersion | None, list[LimitUsage], TelehealthRule | None]:
    reasons: list[Reason] = []
    sid = span.span_id
    opt_out = opt_out_for(span, spans)
    if opt_out is not None and dos >= opt_out:
        reasons.append(
            Reason(
                ReasonCode.OPTED_OUT,
                f"member opted out of contract {span.contract_id} on {opt_out.isoformat()}",
                "do not bill this program; re-enroll the member if they opt back in",
                sid,
            )
        )
    if versions is None:
        reasons.append(
            Reason(
                ReasonCode.UNKNOWN_CONTRACT,
                f"span refers to contract {span.contract_id}, which is not on file",
                "load the contract terms or correct the span's contract",
                sid,
            )
        )
        return reasons, None, [], None
    version = version_in_force(versions, dos)
    if version is None:
        reasons.append(
            Reason(
                ReasonCode.OUTSIDE_CONTRACT_WINDOW,
                f"no version of contract {span.contract_id} is in force on {dos.isoformat()}",
                "check the contract dates; bill another payer or hold until the contract is loaded",
                sid,
            )
        )
        return reasons, None, [], None
    terms = version.terms
    if terms.exclusions:
        excluded = terms.exclusions & span.population_flags
        if excluded:
            reasons.append(
                Reason(
                    ReasonCode.EXCLUDED_POPULATION,
                    f"contract {span.contract_id} excludes {', '.join(sorted(excluded))} members",
                    "route the service to the program that covers this population",
                    sid,
                )
            )
    routing: TelehealthRule | None = None
    if modality is not None:
        if modality not in terms.telehealth.allowed_modalities:
            reasons.append(
                Reason(
                    ReasonCode.MODALITY_NOT_COVERED,
                    f"contract {span.contract_id} does not cover {modality} visits",
                    "deliver the service in a covered modality or bill another payer",
                    sid,
                )
            )
        elif location is not None:
            routing = terms.telehealth.route(modality, location)
            if routing is None:
                reasons.append(
                    Reason(
                        ReasonCode.MODALITY_NOT_COVERED,
                        f"contract {span.contract_id} has no rule for {modality} with the "
                        f"patient at {location}",
                        "ask the payer how to bill this setting and add it to the contract",
                        sid,
                    )
                )
    usages = _usage(span, version, dos, service_type, prior_services)
    for usage in usages:
        if usage.exceeded:
            reasons.append(
                Reason(
                    ReasonCode.FREQUENCY_LIMIT_REACHED,
                    f"{usage.limit.service_type} limit of {usage.max_count} per "
                    f"{usage.period_label} already used ({usage.used - 1} billed)",
                    "schedule after the period ends, or document justification and request "
                    "an exception",
                    sid,
                )
            )
    return reasons, version, usages, routing


def check_eligibility(
    spans: Sequence[CoverageSpan],
    contracts_by_id: Mapping[str, Sequence[ContractVersion]],
    dos: date,
    service_type: ServiceType,
    prior_services: Sequence[PriorService],
    *,
    as_known_at: datetime | None = None,
    modality: Modality | None = None,
    patient_location: PatientLocation | None = None,
) -> Eligibility:
    """Decide eligibility for `service_type` on `dos` from what was known at `as_known_at`
    (None: everything recorded). See the module docstring for the fall-through order."""
    known = _as_known_at(spans, as_known_at)
    covering = [span for span in known if span.covers(dos)]
    if not covering:
        reason = Reason(
            ReasonCode.NO_COVERAGE_ON_DOS,
            f"no coverage span is in effect on {dos.isoformat()}",
            "verify eligibility for the date of service (270/271); bill the right payer or the "
            "patient",
        )
        return Eligibility(False, dos, service_type, None, None, None, (), (reason,), ())
    if len(covering) > 1:
        covering.sort(key=_priority_order)
    rejected: list[SpanRejection] = []
    for span in covering:
        reasons, version, usages, routing = _check_span(
            span,
            known,
            contracts_by_id.get(span.contract_id),
            dos,
            service_type,
            prior_services,
            modality,
            patient_location,
        )
        if reasons or version is None:
            rejected.append(SpanRejection(span, tuple(reasons), tuple(usages)))
            continue
        return Eligibility(
            True,
            dos,
            service_type,
            span,
            version,
            _window(span, version, known),
            tuple(usages),
            (),
            tuple(rejected),
            routing,
        )
    all_reasons = tuple(reason for rejection in rejected for reason in rejection.reasons)
    return Eligibility(False, dos, service_type, None, None, None, (), all_reasons, tuple(rejected))


def _as_known_at(spans: Sequence[CoverageSpan], at: datetime | None) -> Sequence[CoverageSpan]:
    # One span needs no collapsing; this is the common case and the hot path.
    if len(spans) == 1 and at is None:
        return spans
    return as_known_at(spans, at)


def _window(
    span: CoverageSpan, version: ContractVersion, spans: Sequence[CoverageSpan]
) -> DateWindow:
    start = max(span.effective_from, version.effective_from)
    ends = [end for end in (span.effective_to, version.effective_to) if end is not None]
    opt_out = opt_out_for(span, spans)
    if opt_out is not None:
        ends.append(opt_out - _ONE_DAY)
    return DateWindow(start, min(ends) if ends else None)
