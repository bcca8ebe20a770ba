"""Building a PMPM claim (see `services.billing.pmpm_claims` for what it contains): from a
billable line of the closed run, the month's sessions and coverage's evidence to the claim
row, its lines, coding and audit events. No reads or writes: `pmpm_claims` does those."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import msgspec

from services.billing import claims as creation
from services.billing.claims_build import (
    Decision,
    HoldReason,
    PatientHistory,
    _reason_text,
    billing_provider_json,
    draft_from,
    evidence_json,
    pos_table,
    reasons_json,
    rendering_provider_json,
    scrub_reasons,
    subscriber_json,
)
from services.billing.domain.claim_state import ClaimStatus, transition
from services.billing.domain.coding import (
    MAX_LINE_POINTERS,
    ActivityRequirement,
    CodingStatus,
    CodingTerms,
    FeeScheduleEntry,
    Modality,
    MonthlyAddOn,
    MonthlyCode,
    PatientLocation,
    TelehealthPolicy,
    TimeRule,
    code_member_month,
    normalize_diagnosis,
)
from services.billing.domain.pmpm import PmpmTermsView, month_end
from services.billing.domain.scrub import ClaimLine, Finding, scrub
from services.billing.ports import EligibilityEvidence
from services.billing.schemas import SessionCreate
from shared.money import format_cents

#: claims.service_type of a PMPM claim (not a session service type, so no frequency limit
#: counts it).
SERVICE_TYPE = "PMPM"


@dataclass(frozen=True, slots=True)
class _Session:
    """One session the run counted for the member-month."""

    id: str
    dos: date
    created_at: datetime
    state: str
    minutes: int
    interventions: int
    cmd: SessionCreate | None  # None: the stored payload no longer parses


@dataclass(frozen=True, slots=True)
class _Built:
    row: dict[str, Any]
    lines: list[dict[str, Any]]
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Context:
    tenant_id: str
    run: Any
    terms: PmpmTermsView
    coding: CodingTerms | None
    today: date
    now: datetime
    actor: str
    request_id: str | None


# ----------------------------------------------------------------------------- coverage


def _coverage_reasons(
    evidence: EligibilityEvidence, dos: date, contract_id: str
) -> list[HoldReason]:
    cov, payer = evidence.coverage, evidence.payer
    if cov is not None:
        who = f"{payer.name} " if payer is not None else ""
        return [
            HoldReason(
                "eligibility",
                "PMPM_CONTRACT_NOT_CHOSEN",
                f"on {dos.isoformat()} coverage bills {who}contract {cov.contract_id} "
                f"({cov.priority}) rather than PMPM contract {contract_id}, and no day of "
                "the month finds this contract",
                "check the member's coverage spans and coordination of benefits; bill the "
                "member-month outside this service or write the claim off",
            )
        ]
    reasons = [
        HoldReason("eligibility", r.code, f"{dos.isoformat()}: {r.message}", r.fix)
        for r in evidence.reasons
    ]
    return reasons or [
        HoldReason(
            "eligibility",
            "NO_COVERAGE_ON_DOS",
            f"coverage finds no span of PMPM contract {contract_id} in the month",
            "verify the member's coverage for the month; the run counted it when it was made",
        )
    ]


# ----------------------------------------------------------------------------- coding


def coding_terms_of(contract_id: str, terms: PmpmTermsView) -> CodingTerms:
    """The run's contract version as the monthly coding engine reads it: its monthly codes,
    activity requirement and unmodified fees (what the run priced with). Thresholds of 0
    count as 1, as in the run."""
    return CodingTerms(
        rule_version=f"{contract_id}@v{terms.version}",
        time_rule=TimeRule.MIDPOINT,  # session rules: not read by monthly coding
        telehealth=TelehealthPolicy(frozenset()),
        fee_schedule=tuple(
            FeeScheduleEntry(f.code, None, f.charge, f.allowed, f.effective_from, f.effective_to)
            for f in terms.fees
        ),
        monthly_codes=tuple(
            MonthlyCode(
                m.code,
                max(m.min_minutes, 1),
                MonthlyAddOn(m.addon_code, m.addon_step_minutes, m.max_addon_units)
                if m.addon_code is not None and m.addon_step_minutes
                else None,
            )
            for m in terms.monthly_codes
        ),
        pmpm_activity=(
            ActivityRequirement(terms.min_minutes, terms.min_interventions)
            if terms.has_activity_requirement
            else None
        ),
    )


def _interventions(n: int) -> str:
    return f"{n} intervention" if n == 1 else f"{n} interventions"


def _diagnoses(sessions: Sequence[_Session]) -> tuple[tuple[str, ...], list[str]]:
    """The month's diagnoses, latest session first, normalized and once each; and the raw
    codes that are not ICD-10-CM shaped (left out)."""
    codes: dict[str, None] = {}
    invalid: list[str] = []
    for s in reversed(sessions):
        if s.cmd is None:
            continue
        for raw in s.cmd.diagnoses:
            code = normalize_diagnosis(raw)
            if code is None:
                invalid.append(raw)
            else:
                codes[code] = None
    return tuple(codes), invalid


def _priced(ctx: _Context, line: Any, reasons: list[HoldReason]) -> list[tuple[str, int, int, int]]:
    """(code, units, unit charge, unit allowed) of the line's codes, with the fees the run
    priced them with; a sum that differs from the line's amounts holds the claim."""
    day = month_end(ctx.run.period)
    coded = [(str(line.monthly_code), 1)]
    if line.addon_code and line.addon_units > 0:
        coded.append((str(line.addon_code), int(line.addon_units)))
    out: list[tuple[str, int, int, int]] = []
    for code, units in coded:
        fee = ctx.terms.fee(code, day)
        out.append((code, units, fee.charge if fee else 0, fee.allowed if fee else 0))
    charge = sum(u * c for _, u, c, _a in out)
    allowed = sum(u * a for _, u, _c, a in out)
    if (charge, allowed) != (line.charge_cents, line.expected_cents):
        reasons.append(
            HoldReason(
                "coding",
                "PMPM_AMOUNTS_DIFFER",
                f"the codes price to charge {format_cents(charge)}, allowed "
                f"{format_cents(allowed)} but the closed run's line says charge "
                f"{format_cents(line.charge_cents)}, allowed {format_cents(line.expected_cents)}",
                "check the contract's fee schedule for the month against the run, then "
                "correct the claim's lines",
            )
        )
    return out


def _rationale(
    ctx: _Context,
    line: Any,
    sessions: Sequence[_Session],
    priced: Sequence[tuple[str, int, int, int]],
    reasons: list[HoldReason],
) -> tuple[str, str]:
    """(rationale, coding status): which sessions' minutes and interventions earned which
    codes, by the monthly coding engine on the line's totals."""
    run = ctx.run
    month = f"{run.period:%Y-%m}"
    counted = "; ".join(
        f"{s.dos.isoformat()}: {s.minutes} min, {_interventions(s.interventions)}" for s in sessions
    )
    text_parts = [
        f"PMPM member-month {month}, contract {run.contract_id} v{run.contract_version}, "
        f"billed by claim on the month's close (run {run.run_no}).",
        f"Sessions counted: {counted or 'none'}.",
    ]
    status = CodingStatus.BILLABLE.value
    result = None
    if ctx.coding is not None:
        result = code_member_month(
            ctx.coding, [line.minutes], [line.interventions], run.period.year, run.period.month
        )
    if result is None:
        text_parts.append(
            f"{line.minutes} min and {_interventions(line.interventions)} documented: "
            + ", ".join(f"{code} x{units}" for code, units, _c, _a in priced)
            + " (as the run coded them)."
        )
        return "\n".join(text_parts), status
    text_parts.append(result.rationale)
    for r in result.reasons:
        reasons.append(HoldReason("coding", r.code.value, r.message, r.fix))
    if result.reasons:
        status = CodingStatus.HELD.value
    if [(x.code, x.units) for x in result.lines] != [(c, u) for c, u, _c, _a in priced]:
        reasons.append(
            HoldReason(
                "coding",
                "PMPM_CODES_DIFFER",
                "the monthly coding of the line's "
                f"{line.minutes} min gives "
                + (", ".join(f"{x.code} x{x.units}" for x in result.lines) or "no code")
                + " but the closed run billed "
                + ", ".join(f"{c} x{u}" for c, u, _c, _a in priced),
                "check the contract's monthly codes against the run, then correct the "
                "claim's lines",
            )
        )
        status = CodingStatus.HELD.value
    return "\n".join(text_parts), status


def _place(
    evidence: EligibilityEvidence, cmd: SessionCreate, reasons: list[HoldReason]
) -> tuple[str | None, tuple[str, ...], str]:
    """Place of service and modifiers of the date-of-service session under the contract's
    telehealth rules (as for a session's claim)."""
    terms = evidence.coding_terms
    if terms is None:
        return None, (), "No place of service: no contract terms on the date of service."
    modality, location = Modality(cmd.modality.value), PatientLocation(cmd.patient_location.value)
    allowed = modality in terms.telehealth.allowed_modalities
    rule = terms.telehealth.place_for(modality, location) if allowed else None
    if rule is None:
        reasons.append(
            HoldReason(
                "coding",
                "LOCATION_NOT_COVERED" if allowed else "MODALITY_NOT_COVERED",
                f"the contract has no place of service for a {modality} session with the "
                f"patient at {location} (the month's last session, the date of service)",
                "confirm the contract's telehealth and place-of-service terms with the payer; "
                "hold or write off the claim if the payer does not pay this setting",
            )
        )
        return None, (), f"No place of service for {modality} at {location}."
    modifiers = () if rule.modifier is None else (rule.modifier,)
    with_mod = f" with modifier {rule.modifier}" if rule.modifier else ", no modifier"
    return rule.place_of_service, modifiers, f"POS {rule.place_of_service}{with_mod}"


def _build(
    ctx: _Context,
    line: Any,
    sessions: list[_Session],
    evidence: EligibilityEvidence,
    chosen: bool,
    history: PatientHistory,
    pcn: str,
    claim_id: str,
) -> _Built:
    run = ctx.run
    contract_id = str(run.contract_id)
    dos = max(s.dos for s in sessions)
    source, cmd = next((s, s.cmd) for s in reversed(sessions) if s.cmd is not None)
    if cmd.date_of_service != dos:  # the last session's own record could not be read
        cmd = msgspec.structs.replace(cmd, date_of_service=dos)
    reasons: list[HoldReason] = []
    billed = evidence
    if not chosen:
        reasons.extend(_coverage_reasons(evidence, dos, contract_id))
        billed = replace(evidence, coverage=None, payer=None, coding_terms=None)
    priced = _priced(ctx, line, reasons)
    rationale, coding_status = _rationale(ctx, line, sessions, priced, reasons)
    place, modifiers, place_text = _place(billed, cmd, reasons)
    diagnoses, invalid = _diagnoses(sessions)
    pointers = tuple(range(1, min(len(diagnoses), MAX_LINE_POINTERS) + 1))
    dx_text = (
        f"diagnoses {', '.join(diagnoses)} from the month's sessions"
        if diagnoses
        else "no valid diagnosis in the month's sessions"
    )
    if invalid:
        dx_text += f" ({', '.join(repr(c) for c in invalid)} not ICD-10-CM, left out)"
    rationale += (
        f"\nDate of service {dos.isoformat()}: the month's last documented session; "
        f"{place_text}, billing and rendering provider from that session; {dx_text}."
    )
    claim_lines_ = tuple(
        ClaimLine(code, modifiers, units, charge * units, dos, pointers)
        for code, units, charge, _a in priced
    )
    subscriber = subscriber_json(billed)
    if subscriber is not None:
        # The member-month's id (its span in the run): what the payer's 835 pays it under.
        subscriber["member_id"] = line.member_id
    billing = billing_provider_json(cmd)
    draft = draft_from(
        pcn=pcn,
        cmd=cmd,
        evidence=billed,
        billing=billing,
        rendering=rendering_provider_json(cmd),
        subscriber=subscriber,
        place_of_service=place,
        diagnoses=diagnoses,
        lines=claim_lines_,
        max_addon_units=None,  # the scrubber's add-on cap is the session add-on's (99607)
    )
    findings: tuple[Finding, ...] = ()
    if draft is not None:
        checked = scrub(draft, history.lines, ctx.today, pos_table=pos_table())
        findings = checked.findings
        reasons.extend(scrub_reasons(findings))
    elif chosen:  # coverage chose the contract but knows no payer record for it
        reasons.append(
            HoldReason(
                "eligibility",
                "NO_PAYER_ON_FILE",
                f"coverage has no payer record for contract {contract_id}",
                "add the payer in coverage; bill the member-month outside this service",
            )
        )
    status = ClaimStatus.ON_HOLD if reasons else ClaimStatus.READY
    move = transition(ClaimStatus.DRAFT, status, reason=_reason_text(status, reasons))
    coding_json: dict[str, Any] = {
        "status": coding_status,
        "kind": "pmpm_monthly",
        "rationale": rationale,
        "rule_version": ctx.coding.rule_version if ctx.coding else None,
        "period": f"{run.period:%Y-%m}",
        "run_id": str(run.id),
        "run_no": run.run_no,
        "minutes": line.minutes,
        "interventions": line.interventions,
        "place_of_service": place,
        "reasons": reasons_json(r for r in reasons if r.source == "coding"),
        "lines": [
            {
                "code": code,
                "modifiers": list(modifiers),
                "units": units,
                "charge_cents": charge * units,
                "expected_cents": allowed * units,
            }
            for code, units, charge, allowed in priced
        ],
        "sessions": [
            {
                "session_id": s.id,
                "date_of_service": s.dos.isoformat(),
                "minutes": s.minutes,
                "interventions": s.interventions,
            }
            for s in sessions
        ],
    }
    d = Decision(
        status=status,
        transition=move,
        reasons=tuple(reasons),
        coding=None,
        coding_json=coding_json,
        findings=findings,
        lines=claim_lines_,
        unit_prices=tuple((charge, allowed) for _c, _u, charge, allowed in priced),
        expected_cents=tuple(allowed * units for _c, units, _ch, allowed in priced),
        diagnoses=diagnoses,
        draft=draft,
        timely_filing_deadline=draft.timely_filing_deadline if draft else None,
    )
    pending = creation._Pending(
        source.id, ctx.tenant_id, line.patient_ref, source.state, cmd, source.created_at
    )
    row = creation.claim_row(
        claim_id=claim_id, pcn=pcn, p=pending, evidence=billed, d=d, now=ctx.now
    )
    row.update(
        session_id=None,
        pmpm_period=run.period,
        pmpm_run_id=str(run.id),
        service_type=SERVICE_TYPE,
        patient_id=str(line.patient_id),
        payer_id=str(run.payer_id),
        contract_id=contract_id,
        contract_version=run.contract_version,
        place_of_service=place,
        subscriber=subscriber,
        # What coverage answered, including another contract it chose instead.
        eligibility=evidence_json(evidence),
    )
    events = creation._claim_events(
        row,
        d,
        ctx.actor,
        ctx.now,
        reason=(
            f"pmpm: monthly claim for {run.period:%Y-%m}, made when the month was closed "
            f"(run {run.run_no})"
        ),
        after={
            "service_type": SERVICE_TYPE,
            "pmpm_period": run.period.isoformat(),
            "pmpm_run_id": str(run.id),
            "date_of_service": dos.isoformat(),
            "sessions": [s.id for s in sessions],
        },
        request_id=ctx.request_id,
    )
    return _Built(row, creation._line_rows(claim_id, d), events)
