"""CoveragePort in process: calls coverage's service layer on the caller's connection (so
eligibility, coding and the claim are decided in one transaction) and maps coverage's domain
into billing's port types, including ContractTerms -> CodingTerms.

Mapped CodingTerms are cached per (contract, version): a stored version's terms never change.
`evidence_for_many` answers a batch of sessions with three queries in all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.coding_terms import (
    ActivityRequirement,
    CodingTerms,
    FeeScheduleEntry,
    Modality,
    MonthlyAddOn,
    MonthlyCode,
    PatientLocation,
    PlaceOfServiceRule,
    TelehealthPolicy,
    TimeRule,
)
from services.billing.ports import (
    CoverageChoice,
    EligibilityEvidence,
    EligibilityReason,
    PatientInfo,
    PayerInfo,
    PriorService,
)
from services.coverage import service as coverage
from services.coverage.domain.contracts import ContractTerms
from services.coverage.domain.contracts import Modality as CovModality
from services.coverage.domain.contracts import PatientLocation as CovLocation

_CACHE_SIZE = 4096
_coding_cache: OrderedDict[tuple[str, int], CodingTerms] = OrderedDict()


def coding_terms_from(contract_id: str, version: int, terms: ContractTerms) -> CodingTerms:
    """Coverage's contract terms as the coding engine reads them.

    Coverage allows `min_base_minutes` 0 and monthly thresholds of 0 minutes; the coding
    engine needs at least one minute to code anything, so both map to 1."""
    key = (contract_id, version)
    cached = _coding_cache.get(key)
    if cached is not None:
        return cached
    tele = terms.telehealth
    pmpm = terms.pmpm
    monthly: tuple[MonthlyCode, ...] = ()
    activity: ActivityRequirement | None = None
    if pmpm is not None:
        monthly = tuple(
            MonthlyCode(
                code=m.code,
                min_minutes=max(m.min_minutes, 1),
                add_on=(
                    MonthlyAddOn(m.addon_code, m.addon_step_minutes, m.max_addon_units)
                    if m.addon_code is not None and m.addon_step_minutes
                    else None
                ),
            )
            for m in pmpm.monthly_codes
        )
        if pmpm.activity is not None:
            activity = ActivityRequirement(
                pmpm.activity.min_minutes, pmpm.activity.min_interventions
            )
    mapped = CodingTerms(
        rule_version=f"{contract_id}@v{version}",
        time_rule=TimeRule(terms.time_rule.value),
        telehealth=TelehealthPolicy(
            allowed_modalities=frozenset(Modality(m.value) for m in tele.allowed_modalities),
            places=tuple(
                PlaceOfServiceRule(
                    Modality(r.modality.value),
                    PatientLocation(r.location.value),
                    r.place_of_service,
                    r.modifier,
                )
                for r in tele.rules
            ),
        ),
        fee_schedule=tuple(
            FeeScheduleEntry(
                code=e.code,
                modifier=e.modifier,
                charge_cents=e.charge,
                allowed_cents=e.allowed,
                effective_from=e.effective_from,
                effective_to=e.effective_to,
            )
            for e in terms.fee_schedule
        ),
        required_documentation=terms.required_documentation,
        new_patient_lookback_years=terms.new_patient_lookback_years,
        min_base_minutes=(
            max(terms.min_base_minutes, 1) if terms.min_base_minutes is not None else None
        ),
        max_addon_units=terms.max_addon_units,
        monthly_codes=monthly,
        pmpm_activity=activity,
    )
    _coding_cache[key] = mapped
    if len(_coding_cache) > _CACHE_SIZE:
        _coding_cache.popitem(last=False)
    return mapped


def _no_patient(dos: date, patient_ref: str) -> EligibilityEvidence:
    return EligibilityEvidence(
        eligible=False,
        checked_on=dos,
        reasons=(
            EligibilityReason(
                "NO_COVERAGE_ON_DOS",
                f"patient {patient_ref!r} is not on file with coverage",
                "create the patient or import the payer's roster, then reprice",
            ),
        ),
        usage=(),
        patient=None,
        coverage=None,
        payer=None,
        coding_terms=None,
    )


def _evidence(ev: coverage.Evaluation) -> EligibilityEvidence:
    e = ev.eligibility
    p = ev.patient
    patient = PatientInfo(
        patient_id=p.id,
        patient_ref=p.patient_ref,
        first_name=p.first_name,
        last_name=p.last_name,
        birth_date=p.birth_date,
        sex=p.sex,
        address1=p.address1 or "",
        city=p.city or "",
        state=p.state or "",
        zip=p.zip or "",
    )
    choice = payer = terms = None
    if e.span is not None and e.contract_version is not None and e.window is not None:
        s, v = e.span, e.contract_version
        choice = CoverageChoice(
            span_id=s.span_id,
            member_id=s.member_id,
            group_number=s.group,
            relationship=s.relationship,
            priority=s.priority.value,
            window_from=e.window.start,
            window_to=e.window.end,
            contract_id=s.contract_id,
            contract_version=v.version,
            billing_model=v.terms.billing_model.value,
        )
        terms = coding_terms_from(s.contract_id, v.version, v.terms)
    if ev.payer is not None:
        r = ev.payer
        payer = PayerInfo(
            payer_id=r.id,
            name=r.name,
            x12_payer_id=r.x12_payer_id,
            receiver_id=r.receiver_id,
            receiver_name=r.receiver_name,
            claim_filing_indicator=r.claim_filing_indicator,
            timely_filing_days=r.timely_filing_days,
            appeal_window_days=r.appeal_window_days,
            transport=r.transport,
            trading_partner_id=r.trading_partner_id,
        )
    return EligibilityEvidence(
        eligible=e.eligible,
        checked_on=e.dos,
        reasons=tuple(EligibilityReason(r.code.value, r.message, r.fix) for r in e.reasons),
        usage=tuple(u.text for u in e.usage),
        patient=patient,
        coverage=choice,
        payer=payer,
        coding_terms=terms,
    )


def _location(value: str | None) -> CovLocation | None:
    return CovLocation(value) if value else None


def _modality(value: str | None) -> CovModality | None:
    return CovModality(value) if value else None


@dataclass(frozen=True, slots=True)
class EvidenceQuery:
    patient_ref: str
    dos: date
    service_type: str
    modality: str | None = None
    patient_location: str | None = None
    prior_services: Sequence[PriorService] = ()


class InProcessCoverage:
    """`CoveragePort` backed by coverage's service layer in this process."""

    async def evidence_for(
        self,
        conn: AsyncConnection,
        *,
        tenant_id: str,
        patient_ref: str,
        dos: date,
        service_type: str,
        modality: str | None,
        patient_location: str | None,
        prior_services: Sequence[PriorService],
    ) -> EligibilityEvidence:
        ev = await coverage.evaluate(
            conn,
            tenant_id=tenant_id,
            patient_ref=patient_ref,
            dos=dos,
            service_type=coverage.service_type_of(service_type),
            modality=_modality(modality),
            patient_location=_location(patient_location),
            prior_services=prior_services,
        )
        return _no_patient(dos, patient_ref) if ev is None else _evidence(ev)

    async def evidence_for_many(
        self, conn: AsyncConnection, *, tenant_id: str, queries: Sequence[EvidenceQuery]
    ) -> list[EligibilityEvidence]:
        """One answer per query, in order, loading every patient, span and contract version
        the batch needs in three round trips (plus one for payers)."""
        loaded, versions, payers = await coverage.load_batch(
            conn, tenant_id, [q.patient_ref for q in queries]
        )
        out: list[EligibilityEvidence] = []
        for q in queries:
            entry = loaded.get(q.patient_ref)
            if entry is None:
                out.append(_no_patient(q.dos, q.patient_ref))
                continue
            ev = await coverage.evaluate(
                conn,
                tenant_id=tenant_id,
                patient_ref=q.patient_ref,
                dos=q.dos,
                service_type=coverage.service_type_of(q.service_type),
                modality=_modality(q.modality),
                patient_location=_location(q.patient_location),
                prior_services=q.prior_services,
                loaded=entry,
                versions=versions,
                payers=payers,
            )
            out.append(_no_patient(q.dos, q.patient_ref) if ev is None else _evidence(ev))
        return out
