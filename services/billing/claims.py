"""Claim creation: documented sessions become claims in one transaction per batch, and the
coding preview answers the same question without writing anything.

`price_sessions` is what the worker runs. For a batch of session ids it locks the sessions
still waiting (a session another worker already priced is skipped), loads every patient's
earlier claims in one query, asks coverage for eligibility on each date of service (one
batched call when the adapter offers it), codes, prices and scrubs in memory, then writes
claims, lines, audit events and session states with a handful of bulk statements.
Exactly one claim per session: the session row lock orders two racing workers, and the
UNIQUE (tenant, session, claim version) constraint stops anything that slips past.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing.claims_build import (
    Decision,
    PatientHistory,
    billing_provider_json,
    decide,
    evidence_json,
    findings_json,
    patient_control_number,
    reasons_json,
    rendering_provider_json,
    subscriber_json,
)
from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.coding import normalize_tin
from services.billing.intake import validate_session
from services.billing.ports import CoveragePort, EligibilityEvidence, PriorService
from services.billing.schemas import (
    CodingPreviewRead,
    EligibilityRead,
    FindingRead,
    HoldReasonRead,
    PreviewLineRead,
    SessionCreate,
)
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.logging import get_logger
from shared.money import format_cents

log = get_logger("billing.claims")

CLAIM = "claim"


@dataclass(frozen=True, slots=True)
class EvidenceRequest:
    """One eligibility question (shaped like the in-process adapter's batch query)."""

    patient_ref: str
    dos: date
    service_type: str
    modality: str | None = None
    patient_location: str | None = None
    prior_services: Sequence[PriorService] = ()


class BatchCoveragePort(CoveragePort, Protocol):
    async def evidence_for_many(
        self, conn: AsyncConnection, *, tenant_id: str, queries: Sequence[Any]
    ) -> list[EligibilityEvidence]: ...


def default_coverage() -> CoveragePort:
    """The in-process coverage adapter (both contexts in one process)."""
    from services.billing.adapters.coverage_inprocess import InProcessCoverage

    return InProcessCoverage()


@dataclass(slots=True)
class PriceResult:
    sessions: int = 0
    claims: int = 0
    failed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Pending:
    session_id: str
    tenant_id: str
    patient_ref: str
    prev_state: str
    cmd: SessionCreate
    created_at: datetime


def _request(p: _Pending, history: PatientHistory) -> EvidenceRequest:
    return EvidenceRequest(
        patient_ref=p.patient_ref,
        dos=p.cmd.date_of_service,
        service_type=p.cmd.service_type.value.upper(),
        modality=p.cmd.modality.value,
        patient_location=p.cmd.patient_location.value,
        prior_services=tuple(history.before(p.cmd.date_of_service)),
    )


async def _evidence_one(
    conn: AsyncConnection, coverage: CoveragePort, tenant_id: str, q: EvidenceRequest
) -> EligibilityEvidence:
    return await coverage.evidence_for(
        conn,
        tenant_id=tenant_id,
        patient_ref=q.patient_ref,
        dos=q.dos,
        service_type=q.service_type,
        modality=q.modality,
        patient_location=q.patient_location,
        prior_services=q.prior_services,
    )


async def _prefetch_evidence(
    conn: AsyncConnection,
    coverage: CoveragePort,
    firsts: Sequence[_Pending],
    hist: dict[tuple[str, str], PatientHistory],
) -> dict[str, EligibilityEvidence]:
    """Evidence for each patient's first session of the batch, batched per tenant."""
    many = getattr(coverage, "evidence_for_many", None)
    out: dict[str, EligibilityEvidence] = {}
    by_tenant: dict[str, list[_Pending]] = {}
    for p in firsts:
        by_tenant.setdefault(p.tenant_id, []).append(p)
    for tenant_id, items in by_tenant.items():
        queries = [_request(p, hist[(p.tenant_id, p.patient_ref)]) for p in items]
        if many is not None:
            answers = await many(conn, tenant_id=tenant_id, queries=queries)
        else:
            answers = [await _evidence_one(conn, coverage, tenant_id, q) for q in queries]
        out.update({p.session_id: ev for p, ev in zip(items, answers, strict=True)})
    return out


def _line_rows(claim_id: str, d: Decision) -> list[dict[str, Any]]:
    return [
        {
            "claim_id": claim_id,
            "line_no": i,
            "procedure_code": line.procedure_code,
            "modifiers": list(line.modifiers),
            "units": line.units,
            "unit_charge_cents": unit[0],
            "unit_expected_cents": unit[1],
            "charge_cents": line.charge_cents,
            "expected_cents": expected,
            "date_of_service": line.date_of_service,
            "diagnosis_pointers": list(line.diagnosis_pointers),
        }
        for i, (line, unit, expected) in enumerate(
            zip(d.lines, d.unit_prices, d.expected_cents, strict=True), start=1
        )
    ]


def claim_row(
    *,
    claim_id: str,
    pcn: str,
    p: _Pending,
    evidence: EligibilityEvidence,
    d: Decision,
    now: datetime,
) -> dict[str, Any]:
    cov, payer = evidence.coverage, evidence.payer
    return {
        "id": claim_id,
        "tenant_id": p.tenant_id,
        "session_id": p.session_id,
        "claim_version": 1,
        "frequency_code": "1",
        "patient_control_number": pcn,
        "status": d.status.value,
        "status_reason": d.transition.reason,
        "patient_ref": p.patient_ref,
        "patient_id": evidence.patient.patient_id if evidence.patient else None,
        "payer_id": payer.payer_id if payer else None,
        "contract_id": cov.contract_id if cov else None,
        "contract_version": cov.contract_version if cov else None,
        "service_type": p.cmd.service_type.value.upper(),
        "date_of_service": p.cmd.date_of_service,
        "place_of_service": d.coding.place_of_service if d.coding else None,
        "billing_tin": normalize_tin(p.cmd.pharmacy.tin)[:9],
        "total_charge_cents": sum(line.charge_cents for line in d.lines),
        "expected_cents": sum(d.expected_cents),
        "timely_filing_deadline": d.timely_filing_deadline,
        "billing_provider": billing_provider_json(p.cmd),
        "rendering_provider": rendering_provider_json(p.cmd),
        "subscriber": subscriber_json(evidence),
        "payer": msgspec.to_builtins(payer) if payer else None,
        "diagnoses": list(d.diagnoses),
        "coding": d.coding_json,
        "scrub": findings_json(d.findings),
        "eligibility": evidence_json(evidence),
        "hold_reasons": reasons_json(d.reasons),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _claim_events(
    row: dict[str, Any],
    d: Decision,
    actor: str,
    now: datetime,
    *,
    reason: str = "created from a documented session",
    after: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """The new claim's first two audit events: created (``after`` adds to what it records),
    then the move to the status it starts in."""
    created = audit.build_event(
        tenant_id=row["tenant_id"],
        entity_type=CLAIM,
        entity_id=row["id"],
        seq=1,
        prev_hash=audit.GENESIS,
        action="claim.created",
        actor=actor,
        request_id=request_id,
        reason=reason,
        after={
            "status": ClaimStatus.DRAFT.value,
            "session_id": row["session_id"],
            "patient_control_number": row["patient_control_number"],
            "payer_id": row["payer_id"],
            "contract_id": row["contract_id"],
            "contract_version": row["contract_version"],
            "rule_version": d.coding_json.get("rule_version"),
            "total_charge": format_cents(row["total_charge_cents"]),
            "lines": [f"{line.procedure_code} x{line.units}" for line in d.lines],
            **(after or {}),
        },
        occurred_at=now,
    )
    moved = audit.build_event(
        tenant_id=row["tenant_id"],
        entity_type=CLAIM,
        entity_id=row["id"],
        seq=2,
        prev_hash=created["hash"],
        action=f"claim.{d.transition.event.value}",
        actor=actor,
        request_id=request_id,
        reason=d.transition.reason,
        before={"status": d.transition.source.value},
        after={"status": d.transition.target.value, "reasons": [r.code for r in d.reasons]},
        occurred_at=now,
    )
    return [created, moved]


async def price_sessions(
    conn: AsyncConnection,
    session_ids: Sequence[str],
    *,
    coverage: CoveragePort,
    actor: str,
    today: date | None = None,
) -> PriceResult:
    """Create the claim of every listed session still waiting for one (see module doc)."""
    result = PriceResult()
    rows = await repo.lock_pending_sessions(conn, session_ids)
    if not rows:
        return result
    # Short index-driven statements: JIT compilation (triggered by stale estimates on fast-
    # growing tables) would cost more than it saves.
    await conn.execute(text("SET LOCAL jit = off"))
    now = utc_now()
    today = today or now.date()
    pending: list[_Pending] = []
    failed: list[tuple[Any, str]] = []
    for r in rows:
        try:
            cmd = msgspec.convert(r.payload, SessionCreate)
        except msgspec.ValidationError as exc:
            failed.append((r, f"stored session does not parse: {exc}"[:200]))
            continue
        pending.append(_Pending(str(r.id), r.tenant_id, r.patient_ref, r.state, cmd, r.created_at))
    # Date order per patient, so a later session sees the earlier one's claim.
    pending.sort(key=lambda p: (p.tenant_id, p.patient_ref, p.cmd.date_of_service, p.created_at))
    pairs = list(dict.fromkeys((p.tenant_id, p.patient_ref) for p in pending))
    hist = await repo.histories(conn, pairs)
    firsts: dict[tuple[str, str], _Pending] = {}
    for p in pending:
        firsts.setdefault((p.tenant_id, p.patient_ref), p)
    prefetched = await _prefetch_evidence(conn, coverage, list(firsts.values()), hist)
    numbers = await repo.next_pcn_numbers(conn, len(pending)) if pending else []

    claim_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    claim_events: dict[str, list[dict[str, Any]]] = {}
    outcome: dict[str, tuple[str, str, str, str]] = {}  # session -> (state, reason, claim, pcn)
    for p, number in zip(pending, numbers, strict=True):
        history = hist[(p.tenant_id, p.patient_ref)]
        evidence = prefetched.get(p.session_id)
        if evidence is None:  # a second session of the patient in this batch
            evidence = await _evidence_one(conn, coverage, p.tenant_id, _request(p, history))
        pcn = patient_control_number(p.tenant_id, number)
        try:
            d = decide(pcn=pcn, cmd=p.cmd, evidence=evidence, history=history, today=today)
        except ValueError as exc:  # contract terms the engine cannot code against
            failed.append((p, f"{type(exc).__name__}: {exc}"[:200]))
            continue
        claim_id = str(uuid.uuid4())
        row = claim_row(claim_id=claim_id, pcn=pcn, p=p, evidence=evidence, d=d, now=now)
        claim_rows.append(row)
        line_rows.extend(_line_rows(claim_id, d))
        claim_events[claim_id] = _claim_events(row, d, actor, now)
        state = "not_billable" if d.status is ClaimStatus.NOT_BILLABLE else "priced"
        outcome[p.session_id] = (state, f"claim {pcn} {d.status.value}", claim_id, pcn)
        history.add(
            patient_ref=p.patient_ref,
            pcn=pcn,
            status=d.status,
            dos=p.cmd.date_of_service,
            tin=row["billing_tin"],
            service_type=row["service_type"],
            codes=[line.procedure_code for line in d.lines],
            payer_id=row["payer_id"],
            contract_id=row["contract_id"],
        )

    inserted = await repo.insert_claims(
        conn, claim_rows, line_rows, [e for evs in claim_events.values() for e in evs]
    )
    events: list[dict[str, Any]] = []
    statuses = {row["id"]: row["status"] for row in claim_rows}

    finished = {sid: o for sid, o in outcome.items() if o[2] in inserted}
    fail_ids = {str(getattr(f, "session_id", None) or f.id): why for f, why in failed}
    tenant_of = {str(r.id): str(r.tenant_id) for r in rows}
    heads = await repo.audit_heads(
        conn, "session", [(tenant_of[sid], sid) for sid in [*finished, *fail_ids]]
    )
    updates: list[dict[str, Any]] = []
    prev_state = {p.session_id: p.prev_state for p in pending}
    prev_state.update({str(r.id): r.state for r in rows})
    for sid, (state, reason, claim_id, pcn) in finished.items():
        updates.append({"sid": sid, "state": state, "reason": reason, "at": now})
        events.append(
            _session_event(
                sid,
                tenant_of[sid],
                heads,
                actor,
                now,
                before=prev_state[sid],
                after={
                    "state": state,
                    "claim_id": claim_id,
                    "patient_control_number": pcn,
                    "claim_status": statuses[claim_id],
                },
                reason=reason,
            )
        )
        result.by_status[statuses[claim_id]] = result.by_status.get(statuses[claim_id], 0) + 1
    for sid, why in fail_ids.items():
        updates.append({"sid": sid, "state": "failed", "reason": why, "at": now})
        events.append(
            _session_event(
                sid,
                tenant_of[sid],
                heads,
                actor,
                now,
                before=prev_state[sid],
                after={"state": "failed"},
                reason=why,
            )
        )
        log.warning("billing.session.failed", session_id=sid)
    await repo.finish_sessions(conn, updates, events)
    result.sessions = len(updates)
    result.claims = len(inserted)
    result.failed = len(fail_ids)
    return result


def _session_event(
    sid: str,
    tenant_id: str,
    heads: dict[str, tuple[int, str]],
    actor: str,
    now: datetime,
    *,
    before: str,
    after: dict[str, Any],
    reason: str,
) -> dict[str, Any]:
    seq, prev = heads.get(sid, (0, audit.GENESIS))
    return audit.build_event(
        tenant_id=tenant_id,
        entity_type="session",
        entity_id=sid,
        seq=seq + 1,
        prev_hash=prev,
        action=f"session.{after['state']}",
        actor=actor,
        before={"state": before},
        after=after,
        reason=reason,
        occurred_at=now,
    )


# ----------------------------------------------------------------------------- preview


def _hold_read(r: dict[str, Any]) -> HoldReasonRead:
    return HoldReasonRead(
        source=r["source"], code=r["code"], message=r["message"], fix=r["fix"], field=r["field"]
    )


def _finding_read(f: dict[str, Any]) -> FindingRead:
    return FindingRead(
        code=f["code"],
        severity=f["severity"],
        message=f["message"],
        field=f["field"],
        action=f["action"],
    )


async def preview_coding(
    conn: AsyncConnection,
    principal: Principal,
    cmd: SessionCreate,
    *,
    coverage: CoveragePort,
    today: date | None = None,
) -> CodingPreviewRead:
    """Eligibility, coding, pricing and scrubbing for a session payload; writes nothing."""
    today = today or utc_now().date()
    validate_session(cmd, today)
    key = (principal.tenant_id, cmd.patient_ref)
    history = (await repo.histories(conn, [key]))[key]
    evidence = await _evidence_one(
        conn,
        coverage,
        principal.tenant_id,
        EvidenceRequest(
            patient_ref=cmd.patient_ref,
            dos=cmd.date_of_service,
            service_type=cmd.service_type.value.upper(),
            modality=cmd.modality.value,
            patient_location=cmd.patient_location.value,
            prior_services=tuple(history.before(cmd.date_of_service)),
        ),
    )
    d = decide(pcn="PREVIEW", cmd=cmd, evidence=evidence, history=history, today=today)
    coding = d.coding
    lines = [
        PreviewLineRead(
            procedure_code=line.procedure_code,
            modifiers=list(line.modifiers),
            units=line.units,
            charge=format_cents(line.charge_cents),
            expected=format_cents(expected),
            diagnosis_pointers=list(line.diagnosis_pointers),
        )
        for line, expected in zip(d.lines, d.expected_cents, strict=True)
    ]
    cov, payer = evidence.coverage, evidence.payer
    return CodingPreviewRead(
        billable=d.status is ClaimStatus.READY,
        coding_status=d.coding_json["status"],
        claim_status=d.status.value,
        reasons=[_hold_read(r) for r in reasons_json(d.reasons)],
        lines=lines,
        place_of_service=coding.place_of_service if coding else None,
        modifiers=list(dict.fromkeys(m for line in d.lines for m in line.modifiers)),
        diagnoses=list(d.diagnoses),
        minutes=coding.minutes if coding else 0,
        patient_status=coding.patient_status.value if coding else None,
        last_visit=coding.last_visit if coding else None,
        total_charge=format_cents(sum(line.charge_cents for line in d.lines)),
        expected=format_cents(sum(d.expected_cents)),
        rationale=d.coding_json["rationale"],
        rule_version=d.coding_json.get("rule_version"),
        eligibility=EligibilityRead(
            eligible=evidence.eligible,
            checked_on=evidence.checked_on,
            payer_id=payer.payer_id if payer else None,
            payer_name=payer.name if payer else None,
            contract_id=cov.contract_id if cov else None,
            contract_version=cov.contract_version if cov else None,
            member_id=cov.member_id if cov else None,
            usage=list(evidence.usage),
        ),
        scrub_findings=[_finding_read(f) for f in findings_json(d.findings)],
    )
