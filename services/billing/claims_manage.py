"""Claim use cases for people: hold, release and correct (list, read and history live in
``claims_read`` and are re-exported here).

Every state change goes through `claim_state.transition`, updates the row under optimistic
locking (a stale `version` is 409) and appends an audit event with actor, reason and
before/after in the same transaction.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing.claims_build import (
    HoldReason,
    findings_json,
    pos_table,
    reasons_json,
    scrub_reasons,
)
from services.billing.claims_read import _not_found, claim_history, get_claim, list_claims
from services.billing.domain.claim_state import (
    ClaimEvent,
    ClaimStatus,
    InvalidTransition,
    Transition,
    allowed_events,
    transition,
)
from services.billing.domain.coding import MAX_LINE_POINTERS, normalize_diagnosis
from services.billing.domain.identifiers import EntityType
from services.billing.domain.scrub import (
    Address,
    ClaimDraft,
    ClaimLine,
    ProviderRef,
    ScrubResult,
    Subscriber,
    scrub,
)
from services.billing.schemas import ClaimAction, ClaimPatch, ClaimRead
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict, FieldProblem, RuleViolation, StaleVersion

__all__ = [
    "claim_history",
    "correct_claim",
    "get_claim",
    "hold_claim",
    "list_claims",
    "release_claim",
]

_DX_REASONS = frozenset({"NO_DIAGNOSIS", "INVALID_DIAGNOSIS", "TOO_MANY_DIAGNOSES"})


# ----------------------------------------------------------------------------- transitions


async def _locked(
    conn: AsyncConnection, principal: Principal, claim_id: str, version: int | None
) -> Any:
    row = await repo.get_claim(conn, principal.tenant_id, claim_id, for_update=True)
    if row is None:
        raise _not_found(claim_id)
    if version is not None and version != row.version:
        raise _stale(row.version, version)
    return row


def _stale(current: int, sent: int) -> StaleVersion:
    return StaleVersion(
        f"the claim changed since it was read (version {sent}, now {current})",
        code="stale_version",
        errors=(FieldProblem("version", f"current version is {current}", "stale"),),
        action="read the claim again and reapply the change",
    )


def _transition(current: str, target: ClaimStatus, reason: str, event: ClaimEvent) -> Transition:
    try:
        return transition(ClaimStatus(current), target, reason=reason, event=event)
    except InvalidTransition as exc:
        raise Conflict(
            str(exc),
            code="invalid_transition",
            action="allowed from here: "
            + (", ".join(sorted(e.value for e in allowed_events(ClaimStatus(current)))) or "none"),
        ) from None


async def _save(
    conn: AsyncConnection,
    principal: Principal,
    row: Any,
    values: dict[str, Any],
    events: list[tuple[str, str | None, dict[str, Any], dict[str, Any]]],
    request_id: str | None,
) -> None:
    """Optimistic update plus one audit event per (action, reason, before, after)."""
    values = {**values, "updated_at": utc_now()}
    if not await repo.update_claim(conn, principal.tenant_id, str(row.id), row.version, values):
        raise _stale(row.version + 1, row.version)  # pragma: no cover - row is locked
    for action, reason, before, after in events:
        await audit.append(
            conn,
            tenant_id=principal.tenant_id,
            entity_type="claim",
            entity_id=str(row.id),
            action=action,
            actor=principal.actor,
            request_id=request_id,
            reason=reason,
            before=before,
            after=after,
        )


async def hold_claim(
    conn: AsyncConnection,
    principal: Principal,
    claim_id: str,
    cmd: ClaimAction,
    *,
    request_id: str | None,
) -> ClaimRead:
    row = await _locked(conn, principal, claim_id, cmd.version)
    move = _transition(row.status, ClaimStatus.ON_HOLD, cmd.reason, ClaimEvent.HOLD)
    manual = HoldReason("manual", "MANUAL_HOLD", cmd.reason, "release the claim when resolved")
    reasons = [*row.hold_reasons, *reasons_json([manual])]
    await _save(
        conn,
        principal,
        row,
        {"status": move.target.value, "status_reason": move.reason, "hold_reasons": reasons},
        [
            (
                "claim.hold",
                move.reason,
                {"status": move.source.value},
                {"status": move.target.value, "reasons": [r["code"] for r in reasons]},
            )
        ],
        request_id,
    )
    return await get_claim(conn, principal, claim_id)


async def release_claim(
    conn: AsyncConnection,
    principal: Principal,
    claim_id: str,
    cmd: ClaimAction,
    *,
    request_id: str | None,
) -> ClaimRead:
    """A biller releases a held claim: it is scrubbed again and must pass; holds from coding
    (documentation, consent) and manual holds are overridden on the biller's word, which the
    audit event records."""
    row = await _locked(conn, principal, claim_id, cmd.version)
    move = _transition(row.status, ClaimStatus.READY, cmd.reason, ClaimEvent.SCRUB_PASSED)
    lines = await repo.lines_of(conn, str(row.id))
    checked = await _rescrub(conn, principal, row, _snapshot(row, lines))
    if not checked.passed:
        raise _scrub_failed(checked)
    overridden = [r["code"] for r in row.hold_reasons]
    await _save(
        conn,
        principal,
        row,
        {
            "status": move.target.value,
            "status_reason": f"released: {move.reason}",
            "hold_reasons": [],
            "scrub": findings_json(checked.findings),
        },
        [
            (
                "claim.released",
                move.reason,
                {"status": move.source.value, "reasons": overridden},
                {"status": move.target.value, "reasons": []},
            )
        ],
        request_id,
    )
    return await get_claim(conn, principal, claim_id)


def _scrub_failed(checked: ScrubResult) -> RuleViolation:
    return RuleViolation(
        "the claim still fails the scrubber",
        code="scrub_failed",
        errors=tuple(FieldProblem(f.field, f.message, f.code.value) for f in checked.errors),
        action="correct the listed fields (PATCH /v1/claims/{id}) and release again",
    )


# ----------------------------------------------------------------------------- corrections


class _Snapshot:
    """The correctable parts of a claim, as plain mutable values."""

    def __init__(self, row: Any, lines: list[Any]) -> None:
        self.billing: dict[str, Any] = {
            **row.billing_provider,
            "address": dict(row.billing_provider["address"]),
        }
        self.rendering: dict[str, Any] = dict(row.rendering_provider)
        self.subscriber: dict[str, Any] | None = (
            dict(row.subscriber) if row.subscriber is not None else None
        )
        self.diagnoses: list[str] = list(row.diagnoses)
        self.lines: list[dict[str, Any]] = [{k: v for k, v in r._mapping.items()} for r in lines]

    def line_values(self) -> list[dict[str, Any]]:
        for line in self.lines:
            line["charge_cents"] = line["unit_charge_cents"] * line["units"]
            line["expected_cents"] = line["unit_expected_cents"] * line["units"]
        return self.lines


def _snapshot(row: Any, lines: list[Any]) -> _Snapshot:
    return _Snapshot(row, lines)


def _draft(row: Any, s: _Snapshot) -> ClaimDraft:
    elig = row.eligibility or {}
    cov = elig.get("coverage") or {}
    terms = elig.get("terms") or {}
    sub = s.subscriber or {}
    a = s.billing["address"]
    lines = s.line_values()
    dos: date = row.date_of_service
    return ClaimDraft(
        patient_control_number=row.patient_control_number,
        patient_id=row.patient_ref,
        billing_provider=ProviderRef(
            s.billing["npi"], EntityType(s.billing["entity_type"]), s.billing["taxonomy"]
        ),
        billing_tin=s.billing["tin"],
        billing_address=Address(a["line1"], a["city"], a["state"], a["zip"], a.get("line2", "")),
        rendering_provider=ProviderRef(
            s.rendering["npi"], EntityType(s.rendering["entity_type"]), s.rendering["taxonomy"]
        ),
        subscriber=Subscriber(
            member_id=sub.get("member_id") or "",
            last_name=sub.get("last_name") or "",
            first_name=sub.get("first_name") or "",
            birth_date=date.fromisoformat(sub["birth_date"]) if sub.get("birth_date") else None,
            sex=sub.get("sex") or "",
        ),
        date_of_service=dos,
        coverage_from=date.fromisoformat(cov["window_from"]) if cov.get("window_from") else dos,
        coverage_to=date.fromisoformat(cov["window_to"]) if cov.get("window_to") else None,
        timely_filing_deadline=row.timely_filing_deadline or dos + timedelta(days=365),
        place_of_service=row.place_of_service or "",
        diagnoses=tuple(s.diagnoses),
        lines=tuple(
            ClaimLine(
                line["procedure_code"],
                tuple(line["modifiers"]),
                line["units"],
                line["charge_cents"],
                line["date_of_service"],
                tuple(line["diagnosis_pointers"]),
            )
            for line in lines
        ),
        total_charge_cents=sum(line["charge_cents"] for line in lines),
        max_addon_units=terms.get("max_addon_units"),
        frequency_code=row.frequency_code,
        payer_icn=row.payer_icn,
    )


async def _rescrub(
    conn: AsyncConnection, principal: Principal, row: Any, s: _Snapshot
) -> ScrubResult:
    key = (principal.tenant_id, row.patient_ref)
    history = (await repo.histories(conn, [key], exclude_claim=str(row.id)))[key]
    return scrub(_draft(row, s), history.lines, utc_now().date(), pos_table=pos_table())


def _apply(s: _Snapshot, cmd: ClaimPatch) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """Apply the patch; (before, after) of the changed fields and the hold codes it fixes."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    fixed: set[str] = set()
    problems: list[FieldProblem] = []
    if cmd.diagnoses is not None:
        normalized = [normalize_diagnosis(d) for d in cmd.diagnoses]
        for i, (raw, code) in enumerate(zip(cmd.diagnoses, normalized, strict=True)):
            if code is None:
                problems.append(FieldProblem(f"diagnoses[{i}]", f"{raw!r} is not ICD-10-CM"))
        codes = list(dict.fromkeys(c for c in normalized if c is not None))
        before["diagnoses"], after["diagnoses"] = s.diagnoses, codes
        s.diagnoses = codes
        pointers = list(range(1, min(len(codes), MAX_LINE_POINTERS) + 1))
        for line in s.lines:
            line["diagnosis_pointers"] = pointers
        fixed |= _DX_REASONS
    if cmd.member_id is not None:
        if s.subscriber is None:
            problems.append(
                FieldProblem("member_id", "the claim has no subscriber (no coverage found)")
            )
        else:
            before["member_id"] = "(changed)"  # the id itself is PHI: the claim row keeps it
            after["member_id"] = "(changed)"
            s.subscriber["member_id"] = cmd.member_id
    for name, target, patch in (
        ("rendering_provider", s.rendering, cmd.rendering_provider),
        ("billing_provider", s.billing, cmd.billing_provider),
    ):
        if patch is None:
            continue
        for attr in ("npi", "taxonomy", "tin"):
            value = getattr(patch, attr, None)
            if value is not None:
                if attr == "tin":
                    value = value.replace("-", "")
                before[f"{name}.{attr}"], after[f"{name}.{attr}"] = target.get(attr), value
                target[attr] = value
        address = getattr(patch, "address", None)
        if address is not None:
            new = {
                "line1": address.line1,
                "line2": address.line2 or "",
                "city": address.city,
                "state": address.state,
                "zip": address.zip.replace("-", ""),
            }
            before[f"{name}.address"], after[f"{name}.address"] = target["address"], new
            target["address"] = new
    by_no = {line["line_no"]: line for line in s.lines}
    for i, lp in enumerate(cmd.lines or ()):
        target_line = by_no.get(lp.line_no)
        if target_line is None:
            problems.append(
                FieldProblem(f"lines[{i}].line_no", f"the claim has no line {lp.line_no}")
            )
            continue
        before[f"lines[{lp.line_no}].units"], after[f"lines[{lp.line_no}].units"] = (
            target_line["units"],
            lp.units,
        )
        target_line["units"] = lp.units
    if problems:
        raise RuleViolation(
            "the correction cannot be applied", code="invalid_correction", errors=tuple(problems)
        )
    if not after:
        raise RuleViolation(
            "the correction changes nothing",
            code="empty_correction",
            errors=(FieldProblem("", "send at least one field to correct", "empty"),),
        )
    return before, after, fixed


async def correct_claim(
    conn: AsyncConnection,
    principal: Principal,
    claim_id: str,
    cmd: ClaimPatch,
    *,
    request_id: str | None,
) -> ClaimRead:
    """A biller corrects a held claim; it is scrubbed again and moves to ready when nothing
    is left holding it."""
    row = await _locked(conn, principal, claim_id, cmd.version)
    if row.status != ClaimStatus.ON_HOLD.value:
        raise Conflict(
            f"only a held claim can be corrected; this one is {row.status}",
            code="invalid_transition",
            action="hold the claim first" if row.status == "ready" else None,
        )
    s = _snapshot(row, await repo.lines_of(conn, str(row.id)))
    before, after, fixed = _apply(s, cmd)
    checked = await _rescrub(conn, principal, row, s)
    kept = [
        r
        for r in row.hold_reasons
        if r["source"] in {"coding", "eligibility", "manual"} and r["code"] not in fixed
    ]
    reasons = kept + reasons_json(scrub_reasons(checked.findings))
    reason = cmd.reason or "corrected by a biller"
    lines = s.line_values()
    values: dict[str, Any] = {
        "billing_provider": s.billing,
        "rendering_provider": s.rendering,
        "subscriber": s.subscriber,
        "diagnoses": s.diagnoses,
        "billing_tin": s.billing["tin"][:9],
        "total_charge_cents": sum(line["charge_cents"] for line in lines),
        "expected_cents": sum(line["expected_cents"] for line in lines),
        "scrub": findings_json(checked.findings),
        "hold_reasons": reasons,
    }
    events: list[tuple[str, str | None, dict[str, Any], dict[str, Any]]] = [
        ("claim.corrected", reason, before, {**after, "status": row.status})
    ]
    if not reasons:
        move = _transition(
            row.status, ClaimStatus.READY, f"{reason}; scrubbed clean", ClaimEvent.SCRUB_PASSED
        )
        values["status"] = move.target.value
        values["status_reason"] = move.reason
        events.append(
            (
                "claim.scrub_passed",
                move.reason,
                {"status": move.source.value},
                {"status": move.target.value, "reasons": []},
            )
        )
    else:
        codes = ", ".join(dict.fromkeys(r["code"] for r in reasons))
        values["status_reason"] = f"held for correction: {codes}"
    await repo.replace_lines(conn, str(row.id), lines)
    await _save(conn, principal, row, values, events, request_id)
    return await get_claim(conn, principal, claim_id)
