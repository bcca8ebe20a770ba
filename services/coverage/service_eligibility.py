"""Eligibility use cases: evaluate one patient (or a loaded batch) on a date of service, and
the HTTP-facing check built on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage import repository as repo
from services.coverage.domain.contracts import (
    ContractVersion,
    Modality,
    PatientLocation,
    ServiceType,
    version_in_force,
)
from services.coverage.domain.eligibility import (
    Eligibility,
    LimitUsage,
    PriorService,
    Reason,
    check_eligibility,
)
from services.coverage.domain.spans import CoverageSpan, as_known_at
from services.coverage.schemas import (
    ChosenCoverage,
    EligibilityCheck,
    EligibilityRead,
    ReasonRead,
    RejectedSpan,
    RoutingRead,
    UsageRead,
    WindowRead,
)
from shared.auth import Principal
from shared.errors import FieldProblem, NotFound, RuleViolation

# ----------------------------------------------------------------------------- eligibility


class PriorServiceSource(Protocol):
    """Billing's history port, seen from coverage (structural: billing's BillingHistoryPort
    satisfies it)."""

    async def prior_services(
        self, conn: AsyncConnection, *, tenant_id: str, patient_ref: str, before: date | None = None
    ) -> Sequence[Any]: ...


def service_type_of(value: str) -> ServiceType:
    return ServiceType(value.upper())


def to_prior(item: Any) -> PriorService | None:
    """Billing's PriorService (or anything shaped like it) as the domain's; unknown service
    types are ignored rather than guessed."""
    try:
        st = service_type_of(str(item.service_type))
    except ValueError:
        return None
    return PriorService(
        dos=item.dos,
        service_type=st,
        tin=item.tin,
        contract_id=item.contract_id,
        payer_id=item.payer_id,
    )


def attribute_priors(
    priors: Sequence[PriorService], spans: Sequence[CoverageSpan]
) -> list[PriorService]:
    """Services billing knows no payer for yet (sessions before claims exist) count against the
    coverage the patient had on their date: the span eligibility would have chosen."""
    out: list[PriorService] = []
    for prior in priors:
        if prior.contract_id is None and prior.payer_id is None:
            covering = [s for s in spans if s.covers(prior.dos) and not s.is_void]
            if covering:
                best = min(covering, key=lambda s: (s.priority.rank, -s.effective_from.toordinal()))
                prior = PriorService(
                    prior.dos, prior.service_type, prior.tin, best.contract_id, best.payer_id
                )
        out.append(prior)
    return out


@dataclass(frozen=True, slots=True)
class Evaluation:
    patient: repo.PatientBrief
    eligibility: Eligibility
    span_version: int | None
    payer: repo.PayerRecord | None


def _needs_history(
    spans: Sequence[CoverageSpan],
    versions: dict[str, list[ContractVersion]],
    dos: date,
    service_type: ServiceType,
) -> bool:
    for s in spans:
        if not s.covers(dos):
            continue
        v = version_in_force(versions.get(s.contract_id, ()), dos)
        if v is not None and any(
            lim.service_type.matches(service_type) for lim in v.terms.frequency_limits
        ):
            return True
    return False


async def evaluate(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    patient_ref: str,
    dos: date,
    service_type: ServiceType,
    modality: Modality | None = None,
    patient_location: PatientLocation | None = None,
    known_at: datetime | None = None,
    prior_services: Sequence[Any] | None = None,
    history: PriorServiceSource | None = None,
    loaded: tuple[repo.PatientBrief, list[repo.SpanVersion]] | None = None,
    versions: dict[str, list[ContractVersion]] | None = None,
    payers: dict[str, repo.PayerRecord] | None = None,
) -> Evaluation | None:
    """Eligibility of one patient (by ref) on `dos`; None when the patient is not on file.

    Prior services come from `prior_services` when given, else from `history`, which is only
    asked when a covering contract limits this service type. `loaded`/`versions` let batch
    callers pass what they fetched for many patients at once."""
    drv = None
    if loaded is None and versions is None:
        drv = await repo.driver(conn)
        combined = await repo.patient_spans_and_versions(drv, tenant_id, patient_ref)
        if combined is None:
            return None
        loaded, versions, payers = combined
    elif loaded is None:
        drv = await repo.driver(conn)
        loaded = await repo.patient_with_spans(drv, tenant_id, patient_ref)
        if loaded is None:
            return None
    patient, stored = loaded
    spans = [v.span for v in stored]
    if versions is None:
        drv = drv or await repo.driver(conn)
        versions, payers = await repo.versions_and_payers(
            drv, tenant_id, {s.contract_id for s in spans}
        )
    priors_raw: Sequence[Any] = prior_services or ()
    if (
        prior_services is None
        and history is not None
        and _needs_history(spans, versions, dos, service_type)
    ):
        priors_raw = await history.prior_services(
            conn, tenant_id=tenant_id, patient_ref=patient_ref, before=dos
        )
    priors = [p for p in (to_prior(x) for x in priors_raw) if p is not None]
    if priors:
        known = as_known_at(spans, known_at) if len(spans) > 1 or known_at else spans
        priors = attribute_priors(priors, known)
    result = check_eligibility(
        spans,
        versions,
        dos,
        service_type,
        priors,
        as_known_at=known_at,
        modality=modality,
        patient_location=patient_location,
    )
    span_version: int | None = None
    payer: repo.PayerRecord | None = None
    if result.span is not None:
        chosen = result.span
        span_version = next(v.version for v in stored if v.span is chosen)
        payer = (payers or {}).get(chosen.payer_id)
    return Evaluation(patient, result, span_version, payer)


async def load_batch(
    conn: AsyncConnection, tenant_id: str, patient_refs: Sequence[str]
) -> tuple[
    dict[str, tuple[repo.PatientBrief, list[repo.SpanVersion]]],
    dict[str, list[ContractVersion]],
    dict[str, repo.PayerRecord],
]:
    """Everything `evaluate` needs for many patients, in two round trips."""
    drv = await repo.driver(conn)
    loaded = await repo.patients_with_spans(drv, tenant_id, patient_refs)
    spans = [v.span for _, stored in loaded.values() for v in stored]
    versions, payers = await repo.versions_and_payers(
        drv, tenant_id, {s.contract_id for s in spans}
    )
    return loaded, versions, payers


def _reason(r: Reason) -> ReasonRead:
    return ReasonRead(r.code.value, r.message, r.fix, r.span_id)


def _usage(u: LimitUsage) -> UsageRead:
    return UsageRead(
        service_type=u.limit.service_type.value,
        period=u.limit.period.value,
        period_start=u.period_start,
        period_end=u.period_end,
        used=u.used,
        max_count=u.max_count,
        text=u.text,
    )


async def check(
    conn: AsyncConnection,
    principal: Principal,
    cmd: EligibilityCheck,
    history: PriorServiceSource | None,
) -> EligibilityRead:
    if cmd.as_known_at is not None and cmd.as_known_at.tzinfo is None:
        raise RuleViolation(
            "as_known_at needs a time zone",
            code="invalid_query",
            errors=(FieldProblem("as_known_at", "give a UTC offset, e.g. Z", "invalid"),),
        )
    st = service_type_of(cmd.service_type)
    ev = await evaluate(
        conn,
        tenant_id=principal.tenant_id,
        patient_ref=cmd.patient_ref,
        dos=cmd.date_of_service,
        service_type=st,
        modality=cmd.modality,
        patient_location=cmd.patient_location,
        known_at=cmd.as_known_at,
        history=history,
    )
    if ev is None:
        raise NotFound(
            f"no patient {cmd.patient_ref!r}",
            code="patient_not_found",
            errors=(FieldProblem("patient_ref", "no such patient", "not_found"),),
            action="create the patient or import the payer's roster first",
        )
    e = ev.eligibility
    coverage = None
    if e.span is not None and e.contract_version is not None:
        s = e.span
        coverage = ChosenCoverage(
            span_id=s.span_id,
            span_version=ev.span_version or 0,
            payer_id=s.payer_id,
            payer_name=ev.payer.name if ev.payer else "",
            contract_id=s.contract_id,
            contract_version=e.contract_version.version,
            billing_model=e.contract_version.terms.billing_model.value,
            member_id=s.member_id,
            group=s.group,
            priority=s.priority.value,
            rate_tier=s.rate_tier,
            source=s.source.value,
        )
    return EligibilityRead(
        eligible=e.eligible,
        patient_id=ev.patient.id,
        patient_ref=ev.patient.patient_ref,
        date_of_service=e.dos,
        service_type=st.value,
        as_known_at=cmd.as_known_at,
        reasons=[_reason(r) for r in e.reasons],
        coverage=coverage,
        window=WindowRead(e.window.start, e.window.end) if e.window else None,
        usage=[_usage(u) for u in e.usage],
        usage_text=[u.text for u in e.usage],
        routing=RoutingRead(e.routing.place_of_service, e.routing.modifier) if e.routing else None,
        rejected=[
            RejectedSpan(
                r.span.span_id, [_reason(x) for x in r.reasons], [_usage(u) for u in r.usage]
            )
            for r in e.rejected
        ],
    )
