"""Claim reads for people: the filtered claim list, one claim in full and its audit trail
(with the hash chain verified)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing.domain.claim_state import ClaimStatus, allowed_events
from services.billing.schemas import (
    AuditEventRead,
    AuditTrailRead,
    ClaimLineRead,
    ClaimPage,
    ClaimRead,
    ClaimSummary,
    FindingRead,
    HoldReasonRead,
)
from shared import audit
from shared.auth import Principal
from shared.errors import FieldProblem, NotFound, RuleViolation
from shared.money import format_cents

__all__ = ["claim_history", "get_claim", "list_claims"]


def _not_found(claim_id: str) -> NotFound:
    return NotFound(f"no claim {claim_id}", code="claim_not_found")


def _summary(r: Any) -> ClaimSummary:
    return ClaimSummary(
        id=str(r.id),
        session_id=str(r.session_id) if r.session_id else None,
        pmpm_period=r.pmpm_period,
        patient_control_number=r.patient_control_number,
        status=r.status,
        patient_ref=r.patient_ref,
        payer_id=str(r.payer_id) if r.payer_id else None,
        payer_name=(r.payer or {}).get("name"),
        date_of_service=r.date_of_service,
        total_charge=format_cents(r.total_charge_cents),
        expected=format_cents(r.expected_cents),
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def list_claims(
    conn: AsyncConnection,
    principal: Principal,
    f: repo.ClaimFilter,
    *,
    after: str | None,
    limit: int,
) -> ClaimPage:
    bad = [s for s in f.status if s not in ClaimStatus.__members__.values()]
    if bad:
        raise RuleViolation(
            f"unknown claim status {bad[0]!r}",
            code="invalid_query",
            errors=(FieldProblem("status", "one of: " + ", ".join(ClaimStatus), "invalid"),),
        )
    if f.payer_id is not None and repo.as_uuid(f.payer_id) is None:
        raise RuleViolation(
            "payer must be a payer id (uuid)",
            code="invalid_query",
            errors=(FieldProblem("payer", "not a uuid", "invalid"),),
        )
    rows, cursor = await repo.list_claims(conn, principal.tenant_id, f, after, limit)
    return ClaimPage(items=[_summary(r) for r in rows], next_cursor=cursor)


def _line_read(r: Any) -> ClaimLineRead:
    return ClaimLineRead(
        line_no=r.line_no,
        procedure_code=r.procedure_code,
        modifiers=list(r.modifiers),
        units=r.units,
        charge=format_cents(r.charge_cents),
        expected=format_cents(r.expected_cents),
        unit_charge=format_cents(r.unit_charge_cents),
        date_of_service=r.date_of_service,
        diagnosis_pointers=list(r.diagnosis_pointers),
    )


def _read(row: Any, lines: list[Any]) -> ClaimRead:
    return ClaimRead(
        id=str(row.id),
        session_id=str(row.session_id) if row.session_id else None,
        pmpm_period=row.pmpm_period,
        pmpm_run_id=str(row.pmpm_run_id) if row.pmpm_run_id else None,
        patient_control_number=row.patient_control_number,
        claim_version=row.claim_version,
        frequency_code=row.frequency_code,
        payer_icn=row.payer_icn,
        status=row.status,
        status_reason=row.status_reason,
        allowed_actions=sorted(e.value for e in allowed_events(ClaimStatus(row.status))),
        patient_ref=row.patient_ref,
        patient_id=str(row.patient_id) if row.patient_id else None,
        payer_id=str(row.payer_id) if row.payer_id else None,
        contract_id=str(row.contract_id) if row.contract_id else None,
        contract_version=row.contract_version,
        service_type=row.service_type,
        date_of_service=row.date_of_service,
        place_of_service=row.place_of_service,
        total_charge=format_cents(row.total_charge_cents),
        expected=format_cents(row.expected_cents),
        timely_filing_deadline=row.timely_filing_deadline,
        billing_provider=row.billing_provider,
        rendering_provider=row.rendering_provider,
        subscriber=row.subscriber,
        payer=row.payer,
        diagnoses=list(row.diagnoses),
        lines=[_line_read(r) for r in lines],
        hold_reasons=[HoldReasonRead(**r) for r in row.hold_reasons],
        scrub_findings=[FindingRead(**f) for f in row.scrub],
        coding=row.coding,
        eligibility=row.eligibility,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def get_claim(conn: AsyncConnection, principal: Principal, claim_id: str) -> ClaimRead:
    row = await repo.get_claim(conn, principal.tenant_id, claim_id)
    if row is None:
        raise _not_found(claim_id)
    return _read(row, await repo.lines_of(conn, str(row.id)))


async def claim_history(
    conn: AsyncConnection, principal: Principal, claim_id: str
) -> AuditTrailRead:
    row = await repo.get_claim(conn, principal.tenant_id, claim_id)
    if row is None:
        raise _not_found(claim_id)
    events = await repo.audit_history(conn, principal.tenant_id, str(row.id))
    check = audit.verify_chain(events)
    return AuditTrailRead(
        entity_type="claim",
        entity_id=str(row.id),
        chain_valid=check.valid,
        broken_at_seq=check.broken_at_seq,
        problem=check.problem,
        events=[
            AuditEventRead(
                seq=e.seq,
                action=e.action,
                actor=e.actor,
                occurred_at=e.occurred_at,
                request_id=e.request_id,
                reason=e.reason,
                before=e.before,
                after=e.after,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in events
        ],
    )
