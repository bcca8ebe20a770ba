"""From a documented session and its eligibility evidence to a claim: coding, pricing,
scrubbing and the status it starts in. No I/O: the worker, the coding preview and the
biller's corrections all decide through these functions, so they always agree.

Outcome rules:
* coding says not billable (no coverage on the DOS, below the minimum time, ...) -> not_billable;
* coding holds it (consent, documentation, diagnoses, no fee) or a scrub edit is an error
  -> on_hold, each reason named with its fix;
* otherwise -> ready (scrub warnings are kept on the claim and shown to the biller).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import msgspec

from services.billing.domain.claim_state import ClaimStatus, Transition, transition
from services.billing.domain.coding import (
    CodedLine,
    CodingResult,
    CodingStatus,
    EncounterHistory,
    Modality,
    PatientLocation,
    PriorEncounter,
    ServiceType,
    SessionFacts,
    code_session,
    normalize_diagnosis,
    normalize_tin,
)
from services.billing.domain.coding_reasons import PMPM_CONTRACT, eligibility_reason
from services.billing.domain.identifiers import EntityType
from services.billing.domain.scrub import (
    BASE_CODES,
    Address,
    ClaimDraft,
    ClaimLine,
    Finding,
    PriorLine,
    ProviderRef,
    ScrubResult,
    Subscriber,
    scrub,
)
from services.billing.intake import documented_minutes
from services.billing.ports import EligibilityEvidence, PriorService
from services.billing.schemas import SessionCreate
from shared.codes import CodeTable, PlaceOfService, load_pos
from shared.money import Cents

_POS: list[CodeTable[PlaceOfService]] = []

# Statuses whose services no longer stand at the payer: they neither count against a
# frequency limit nor make a later claim a duplicate.
NOT_STANDING = frozenset(
    {
        ClaimStatus.NOT_BILLABLE,
        ClaimStatus.VOIDED,
        ClaimStatus.REPLACED,
        ClaimStatus.REJECTED,
    }
)


def pos_table() -> CodeTable[PlaceOfService]:
    if not _POS:
        _POS.append(load_pos())
    return _POS[0]


def tenant_tag(tenant_id: str) -> str:
    tag = "".join(c for c in tenant_id.upper() if c.isalnum())[:6]
    return tag or "T"


def patient_control_number(tenant_id: str, seq: int) -> str:
    """CLM01: tenant tag, hyphen, global sequence (<= 20 characters, X12-safe)."""
    return f"{tenant_tag(tenant_id)}-{seq:08d}"


@dataclass(slots=True)
class PatientHistory:
    """What billing already knows about one patient: its earlier claims, line by line."""

    encounters: list[PriorEncounter] = field(default_factory=list)
    lines: list[PriorLine] = field(default_factory=list)
    services: list[PriorService] = field(default_factory=list)

    def encounter_history(self) -> EncounterHistory:
        return EncounterHistory(tuple(self.encounters))

    def before(self, dos: date) -> list[PriorService]:
        return [s for s in self.services if s.dos < dos]

    def add(
        self,
        *,
        patient_ref: str,
        pcn: str,
        status: ClaimStatus,
        dos: date,
        tin: str,
        service_type: str,
        codes: Sequence[str],
        payer_id: str | None,
        contract_id: str | None,
    ) -> None:
        base = next((c for c in codes if c in BASE_CODES), None)
        if base is not None and status not in {ClaimStatus.VOIDED, ClaimStatus.REPLACED}:
            self.encounters.append(PriorEncounter(dos, tin, base))
        for code in codes:
            self.lines.append(PriorLine(patient_ref, code, dos, status, pcn))
        if status not in NOT_STANDING and base is not None:
            self.services.append(PriorService(dos, service_type, tin, base, payer_id, contract_id))


@dataclass(frozen=True, slots=True)
class HoldReason:
    source: str  # coding | eligibility | scrub | manual
    code: str
    message: str
    fix: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything the claim row needs, decided in memory."""

    status: ClaimStatus
    transition: Transition
    reasons: tuple[HoldReason, ...]
    coding: CodingResult | None
    coding_json: dict[str, Any]
    findings: tuple[Finding, ...]
    lines: tuple[ClaimLine, ...]
    unit_prices: tuple[tuple[Cents, Cents], ...]
    expected_cents: tuple[Cents, ...]
    diagnoses: tuple[str, ...]
    draft: ClaimDraft | None
    timely_filing_deadline: date | None


def facts_of(cmd: SessionCreate) -> SessionFacts:
    return SessionFacts(
        date_of_service=cmd.date_of_service,
        face_to_face_minutes=documented_minutes(cmd),
        modality=Modality(cmd.modality.value),
        patient_location=PatientLocation(cmd.patient_location.value),
        service_type=ServiceType(cmd.service_type.value.upper()),
        diagnoses=tuple(cmd.diagnoses),
        interventions=len(cmd.interventions),
        consent=cmd.consent,
        documentation_elements=frozenset(cmd.documentation_elements),
        billing_tin=cmd.pharmacy.tin,
    )


def billing_provider_json(cmd: SessionCreate) -> dict[str, Any]:
    a = cmd.pharmacy.address
    return {
        "npi": cmd.pharmacy.npi,
        "entity_type": EntityType.ORGANIZATION.value,
        "tin": normalize_tin(cmd.pharmacy.tin),
        "name": cmd.pharmacy.name,
        "taxonomy": cmd.pharmacy.taxonomy,
        "address": {
            "line1": a.line1,
            "line2": a.line2 or "",
            "city": a.city,
            "state": a.state,
            "zip": a.zip.replace("-", ""),
        },
    }


def rendering_provider_json(cmd: SessionCreate) -> dict[str, Any]:
    p = cmd.pharmacist
    return {
        "npi": p.npi,
        "entity_type": EntityType.PERSON.value,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "taxonomy": p.taxonomy,
    }


def subscriber_json(evidence: EligibilityEvidence) -> dict[str, Any] | None:
    p, c = evidence.patient, evidence.coverage
    if p is None or c is None:
        return None
    return {
        "member_id": c.member_id,
        "group_number": c.group_number,
        "relationship": c.relationship,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "birth_date": p.birth_date.isoformat(),
        "sex": p.sex,
        "address1": p.address1,
        "city": p.city,
        "state": p.state,
        "zip": p.zip,
    }


def evidence_json(evidence: EligibilityEvidence) -> dict[str, Any]:
    """The eligibility answer as it was on the day, minus the mapped contract terms (the
    contract id and version on the claim identify them; the rule version is in `coding`)."""
    terms = evidence.coding_terms
    out: dict[str, Any] = msgspec.to_builtins(
        {
            "eligible": evidence.eligible,
            "checked_on": evidence.checked_on,
            "reasons": list(evidence.reasons),
            "usage": list(evidence.usage),
            "coverage": evidence.coverage,
            "payer": evidence.payer,
            "patient_id": evidence.patient.patient_id if evidence.patient else None,
        }
    )
    if terms is not None:
        out["terms"] = {
            "rule_version": terms.rule_version,
            "time_rule": terms.time_rule.value,
            "new_patient_lookback_years": terms.new_patient_lookback_years,
            "min_base_minutes": terms.min_base_minutes,
            "max_addon_units": terms.max_addon_units,
            "required_documentation": sorted(terms.required_documentation),
        }
    return out


def _coding_json(result: CodingResult | None, rationale: str | None = None) -> dict[str, Any]:
    if result is None:
        return {
            "status": CodingStatus.NOT_BILLABLE.value,
            "rationale": rationale or "",
            "rule_version": None,
        }
    return {
        "status": result.status.value,
        "rationale": result.rationale,
        "rule_version": result.rule_version,
        "minutes": result.minutes,
        "patient_status": result.patient_status.value,
        "last_visit": result.last_visit.isoformat() if result.last_visit else None,
        "place_of_service": result.place_of_service,
        "reasons": [
            {"code": r.code.value, "message": r.message, "fix": r.fix, "status": r.status.value}
            for r in result.reasons
        ],
        "lines": [
            {
                "code": line.code,
                "modifiers": list(line.modifiers),
                "units": line.units,
                "charge_cents": line.charge_cents,
                "expected_cents": line.expected_cents,
            }
            for line in result.lines
        ],
    }


def _eligibility_codes(evidence: EligibilityEvidence) -> list[str]:
    if evidence.eligible:
        return []
    codes = [r.code for r in evidence.reasons]
    return codes or ["NO_COVERAGE_ON_DOS"]


def draft_from(
    *,
    pcn: str,
    cmd: SessionCreate,
    evidence: EligibilityEvidence,
    billing: dict[str, Any],
    rendering: dict[str, Any],
    subscriber: dict[str, Any] | None,
    place_of_service: str | None,
    diagnoses: Sequence[str],
    lines: Sequence[ClaimLine],
    max_addon_units: int | None,
) -> ClaimDraft | None:
    """The claim as an 837P would carry it; None without a coverage choice and payer."""
    cov, payer = evidence.coverage, evidence.payer
    if cov is None or payer is None:
        return None
    address = billing["address"]
    sub = subscriber or {}
    birth = sub.get("birth_date")
    return ClaimDraft(
        patient_control_number=pcn,
        patient_id=cmd.patient_ref,
        billing_provider=ProviderRef(
            billing["npi"], EntityType(billing["entity_type"]), billing["taxonomy"]
        ),
        billing_tin=billing["tin"],
        billing_address=Address(
            address["line1"], address["city"], address["state"], address["zip"], address["line2"]
        ),
        rendering_provider=ProviderRef(
            rendering["npi"], EntityType(rendering["entity_type"]), rendering["taxonomy"]
        ),
        subscriber=Subscriber(
            member_id=sub.get("member_id") or "",
            last_name=sub.get("last_name") or "",
            first_name=sub.get("first_name") or "",
            birth_date=date.fromisoformat(birth) if birth else None,
            sex=sub.get("sex") or "",
        ),
        date_of_service=cmd.date_of_service,
        coverage_from=cov.window_from,
        coverage_to=cov.window_to,
        timely_filing_deadline=cmd.date_of_service + timedelta(days=payer.timely_filing_days),
        place_of_service=place_of_service or "",
        diagnoses=tuple(diagnoses),
        lines=tuple(lines),
        total_charge_cents=sum(line.charge_cents for line in lines),
        max_addon_units=max_addon_units,
    )


def scrub_reasons(findings: Iterable[Finding]) -> list[HoldReason]:
    return [
        HoldReason("scrub", f.code.value, f.message, f.action.value, f.field)
        for f in findings
        if f.severity.value == "error"
    ]


def decide(
    *,
    pcn: str,
    cmd: SessionCreate,
    evidence: EligibilityEvidence,
    history: PatientHistory,
    today: date,
) -> Decision:
    """Code, price and scrub one session; the status it starts in, with every reason."""
    reasons: list[HoldReason] = []
    terms = evidence.coding_terms
    result: CodingResult | None = None
    pmpm = evidence.coverage is not None and evidence.coverage.billing_model == "pmpm"
    if terms is None or pmpm:
        if pmpm:
            r = PMPM_CONTRACT
            reasons.append(HoldReason("coding", r.code.value, r.message, r.fix))
            coding_json = _coding_json(
                None,
                "The contract pays per member per month: the session is documented activity "
                "of its month, reconciled or billed with the month (PMPM), not an encounter.",
            )
        else:
            elig = [eligibility_reason(c) for c in _eligibility_codes(evidence)]
            if evidence.eligible and not evidence.reasons:
                elig = [eligibility_reason("NO_CONTRACT_TERMS")]
            reasons.extend(HoldReason("eligibility", r.code.value, r.message, r.fix) for r in elig)
            coding_json = _coding_json(
                None, "No contract in force on the date of service: nothing to code."
            )
        status = ClaimStatus.NOT_BILLABLE
        coded_lines: tuple[CodedLine, ...] = ()
        diagnoses = tuple(
            d for d in (normalize_diagnosis(x) for x in cmd.diagnoses) if d is not None
        )
        place = None
        max_addon: int | None = None
    else:
        result = code_session(
            terms, facts_of(cmd), history.encounter_history(), _eligibility_codes(evidence)
        )
        coding_json = _coding_json(result)
        reasons.extend(
            HoldReason(
                "eligibility" if r.code.value in _ELIGIBILITY_CODES else "coding",
                r.code.value,
                r.message,
                r.fix,
            )
            for r in result.reasons
        )
        status = {
            CodingStatus.NOT_BILLABLE: ClaimStatus.NOT_BILLABLE,
            CodingStatus.HELD: ClaimStatus.ON_HOLD,
            CodingStatus.BILLABLE: ClaimStatus.READY,
        }[result.status]
        coded_lines = result.lines
        diagnoses = result.diagnoses
        place = result.place_of_service
        max_addon = terms.max_addon_units

    claim_lines = tuple(
        ClaimLine(
            line.code,
            line.modifiers,
            line.units,
            line.charge_cents,
            cmd.date_of_service,
            line.diagnosis_pointers,
        )
        for line in coded_lines
    )
    unit_prices = tuple(
        (line.charge_cents // max(line.units, 1), line.expected_cents // max(line.units, 1))
        for line in coded_lines
    )
    billing = billing_provider_json(cmd)
    draft = draft_from(
        pcn=pcn,
        cmd=cmd,
        evidence=evidence,
        billing=billing,
        rendering=rendering_provider_json(cmd),
        subscriber=subscriber_json(evidence),
        place_of_service=place,
        diagnoses=diagnoses,
        lines=claim_lines,
        max_addon_units=max_addon,
    )
    findings: tuple[Finding, ...] = ()
    if draft is not None and status is not ClaimStatus.NOT_BILLABLE:
        checked: ScrubResult = scrub(draft, history.lines, today, pos_table=pos_table())
        findings = checked.findings
        if not checked.passed:
            reasons.extend(scrub_reasons(findings))
            status = ClaimStatus.ON_HOLD
    move = transition(ClaimStatus.DRAFT, status, reason=_reason_text(status, reasons))
    return Decision(
        status=status,
        transition=move,
        reasons=tuple(reasons),
        coding=result,
        coding_json=coding_json,
        findings=findings,
        lines=claim_lines,
        unit_prices=unit_prices,
        expected_cents=tuple(line.expected_cents for line in coded_lines),
        diagnoses=diagnoses,
        draft=draft,
        timely_filing_deadline=draft.timely_filing_deadline if draft else None,
    )


_ELIGIBILITY_CODES = frozenset(
    {
        "FREQUENCY_LIMIT_REACHED",
        "EXCLUDED_POPULATION",
        "NO_COVERAGE_ON_DOS",
        "OPTED_OUT",
        "OUTSIDE_CONTRACT_WINDOW",
        "UNRECOGNIZED_ELIGIBILITY_REASON",
    }
)


def _reason_text(status: ClaimStatus, reasons: Sequence[HoldReason]) -> str:
    if status is ClaimStatus.READY:
        return "coded, priced and scrubbed clean"
    codes = ", ".join(dict.fromkeys(r.code for r in reasons)) or "unspecified"
    if status is ClaimStatus.ON_HOLD:
        return f"held for correction: {codes}"
    return f"not billable: {codes}"


def reasons_json(reasons: Iterable[HoldReason]) -> list[dict[str, Any]]:
    return [
        {"source": r.source, "code": r.code, "message": r.message, "fix": r.fix, "field": r.field}
        for r in reasons
    ]


def findings_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [
        {
            "code": f.code.value,
            "severity": f.severity.value,
            "message": f.message,
            "field": f.field,
            "action": f.action.value,
        }
        for f in findings
    ]
