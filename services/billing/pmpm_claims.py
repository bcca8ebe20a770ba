"""PMPM claims: closing the month of a contract that bills by claim (`payment_mode`
``monthly_claim``) bills each member-month the closed run found billable.

`create_claims` runs inside `pmpm.close_run`, in the close's transaction, and makes one claim
per line of the closed run that has a monthly code (on the roster, activity met, a threshold
reached). Nothing happens for capitation contracts. The claim:

* bills the member-month, not a session: ``session_id`` is NULL, ``pmpm_period`` is the
  month's first day and ``pmpm_run_id`` the closed run; ``service_type`` is ``PMPM`` (it is no
  CMR/TMR/follow-up, so it never counts against a session frequency limit);
* carries the line's codes and amounts: the monthly code x1 and the add-on x ``addon_units``,
  each priced with the fee schedule entry the run priced it with (the contract version of the
  run, in force on the month's last day); their sum must equal the line's charge and allowed
  amounts, or the claim is held;
* has as date of service the last documented session of the patient in the month (the
  sessions the run counted: same tenant and patient_ref, not failed, recorded by the run's
  ``as_of``); that session gives the billing and rendering providers and the place of service
  (the contract's telehealth rules), the month's sessions give the diagnoses (latest first);
* takes payer, coverage window and patient from coverage's eligibility port on that date,
  asked without modality or prior services (a monthly code is not a session: no frequency
  limit or modality rule applies), and the member id from the line (the member-month's span:
  an 835 pays the member-month by that id). When coverage does not choose this contract on
  the date of service, the month's other session dates, its first, 15th and last day are
  tried for the payer and coverage window; if none works the claim is held with coverage's
  reasons and no payer;
* is coded with `code_member_month` (the rationale says which minutes and interventions of
  which sessions earned which codes), scrubbed by the same scrubber as every claim (``ready``
  or ``on_hold`` with reasons), gets its timely filing deadline from the payer's days, and is
  audited (``claim.created`` with reason ``pmpm: ...``, then its first move) with the same
  builders the session worker uses (`claims.claim_row`, `claims_build.draft_from`, ...).

One original claim per (tenant, contract, patient, month): the partial unique index
``uq_claims_pmpm_member_month`` refuses a second, and the insert skips member-months already
billed, so a retried close (job or request) creates nothing twice. A ready PMPM claim is
picked up by submission like any other.

Member-months whose sessions cannot be read back (a stored payload that no longer parses)
cannot be billed here: they are counted as skipped in the run's ``pmpm.claims_created``
audit event (by patient id) and in the log (counts only).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing import claims as creation
from services.billing.claims_build import patient_control_number
from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.coding import CodingTerms
from services.billing.domain.pmpm import month_end
from services.billing.intake import documented_minutes
from services.billing.pmpm_claims_build import (
    SERVICE_TYPE,
    _build,
    _Built,
    _Context,
    _Session,
    coding_terms_of,
)
from services.billing.ports import CoveragePort, EligibilityEvidence
from services.billing.schemas import SessionCreate
from services.billing.tables import claim_lines, claims
from services.billing.tables_pmpm import line_order, pmpm_lines
from shared import audit
from shared.clock import utc_now, utc_today
from shared.errors import RuleViolation
from shared.logging import get_logger
from shared.tables import audit_events

if TYPE_CHECKING:
    from services.billing.pmpm import PmpmCoveragePort

__all__ = [
    "CHUNK",
    "MONTHLY_CLAIM",
    "RUN_ENTITY",
    "SERVICE_TYPE",
    "PmpmClaimsResult",
    "Skipped",
    "coding_terms_of",
    "create_claims",
]

log = get_logger("billing.pmpm_claims")

MONTHLY_CLAIM = "monthly_claim"
RUN_ENTITY = "pmpm_run"
# Billable lines billed per round of statements (bounds the memory of a large roster's close).
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Skipped:
    patient_id: str
    reason: str


@dataclass(slots=True)
class PmpmClaimsResult:
    """What closing the month billed: claims created now, member-months already billed (a
    retried close), member-months no claim could be made for."""

    created: int = 0
    already_billed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    claim_ids: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


# ----------------------------------------------------------------------------- reads


_SESSIONS_SQL = text(
    """
    SELECT s.id::text AS id, s.patient_ref, s.date_of_service, s.created_at, s.state, s.payload
    FROM billing.sessions s
    WHERE s.tenant_id = :tenant AND s.patient_ref = ANY(CAST(:refs AS text[]))
      AND s.date_of_service >= :first_day AND s.date_of_service <= :last_day
      AND s.state <> 'failed' AND s.created_at <= :as_of
    ORDER BY s.patient_ref, s.date_of_service, s.created_at, s.id
    """
)


def _minutes_of(payload: dict[str, Any], cmd: SessionCreate | None) -> int:
    if cmd is not None:
        return documented_minutes(cmd)
    value = payload.get("documented_minutes")
    return int(value) if isinstance(value, int) else 0


async def _month_sessions(
    conn: AsyncConnection, tenant_id: str, run: Any, refs: Sequence[str]
) -> dict[str, list[_Session]]:
    """The sessions the run counted, per patient_ref, in date order (the same filter as the
    reconciliation's activity: tenant, month, not failed, recorded by the run's as_of)."""
    rows = await conn.execute(
        _SESSIONS_SQL,
        {
            "tenant": tenant_id,
            "refs": list(refs),
            "first_day": run.period,
            "last_day": month_end(run.period),
            "as_of": run.as_of,
        },
    )
    out: dict[str, list[_Session]] = {}
    for r in rows:
        payload = r.payload if isinstance(r.payload, dict) else {}
        try:
            cmd: SessionCreate | None = msgspec.convert(payload, SessionCreate)
        except msgspec.ValidationError:
            cmd = None
        interventions = payload.get("interventions")
        out.setdefault(r.patient_ref, []).append(
            _Session(
                id=r.id,
                dos=r.date_of_service,
                created_at=r.created_at,
                state=r.state,
                minutes=_minutes_of(payload, cmd),
                interventions=len(interventions) if isinstance(interventions, list) else 0,
                cmd=cmd,
            )
        )
    return out


async def _billable_lines(conn: AsyncConnection, run_id: str) -> list[Any]:
    rows = await conn.execute(
        select(
            pmpm_lines.c.member_id,
            pmpm_lines.c.patient_id,
            pmpm_lines.c.patient_ref,
            pmpm_lines.c.minutes,
            pmpm_lines.c.interventions,
            pmpm_lines.c.monthly_code,
            pmpm_lines.c.addon_code,
            pmpm_lines.c.addon_units,
            pmpm_lines.c.charge_cents,
            pmpm_lines.c.expected_cents,
        )
        .where(
            pmpm_lines.c.run_id == run_id,
            pmpm_lines.c.monthly_code.is_not(None),
            pmpm_lines.c.patient_id.is_not(None),
        )
        .order_by(*line_order())
    )
    return list(rows)


async def _billed_patients(conn: AsyncConnection, tenant_id: str, run: Any) -> set[str]:
    """Patients whose member-month already has its original claim (a retried close)."""
    rows = await conn.execute(
        select(claims.c.patient_id).where(
            claims.c.tenant_id == tenant_id,
            claims.c.contract_id == run.contract_id,
            claims.c.pmpm_period == run.period,
            claims.c.frequency_code == "1",
        )
    )
    return {str(r.patient_id) for r in rows}


# ----------------------------------------------------------------------------- coverage


def _chooses(evidence: EligibilityEvidence, contract_id: str) -> bool:
    cov = evidence.coverage
    return cov is not None and cov.contract_id.lower() == contract_id.lower()


async def _ask(
    conn: AsyncConnection,
    coverage: CoveragePort,
    tenant_id: str,
    queries: Sequence[creation.EvidenceRequest],
) -> list[EligibilityEvidence]:
    many = getattr(coverage, "evidence_for_many", None)
    if many is not None:
        return list(await many(conn, tenant_id=tenant_id, queries=list(queries)))
    return [await creation._evidence_one(conn, coverage, tenant_id, q) for q in queries]


def _candidate_days(period: date, sessions: Sequence[_Session], dos: date) -> list[date]:
    """Where to look for this contract's coverage when the date of service finds another:
    the month's other session dates (latest first), then its 1st, 15th and last day."""
    days = [s.dos for s in reversed(sessions) if s.dos != dos]
    days += [period, period.replace(day=15), month_end(period)]
    return list(dict.fromkeys(d for d in days if d != dos))


async def _evidence(
    conn: AsyncConnection,
    coverage: CoveragePort,
    tenant_id: str,
    contract_id: str,
    period: date,
    wanted: Sequence[tuple[str, str, date, list[_Session]]],
) -> dict[str, tuple[EligibilityEvidence, bool]]:
    """Per patient id: the evidence to bill with and whether it is this contract's.

    `wanted` holds (patient id, patient_ref, date of service, sessions). One batched question
    on the dates of service; only patients for whom coverage chose something else are asked
    again, date by date."""

    def query(ref: str, day: date, sessions: list[_Session]) -> creation.EvidenceRequest:
        st = next((s.cmd for s in reversed(sessions) if s.cmd is not None), None)
        service_type = st.service_type.value.upper() if st is not None else "FOLLOW_UP"
        return creation.EvidenceRequest(patient_ref=ref, dos=day, service_type=service_type)

    answers = await _ask(conn, coverage, tenant_id, [query(r, d, s) for _, r, d, s in wanted])
    out = {
        pid: (ev, _chooses(ev, contract_id)) for (pid, *_), ev in zip(wanted, answers, strict=True)
    }
    pending = {pid: (ref, _candidate_days(period, s, d), s) for pid, ref, d, s in wanted}
    step = 0
    while True:
        asks = [
            (pid, ref, days[step], s)
            for pid, (ref, days, s) in pending.items()
            if not out[pid][1] and step < len(days)
        ]
        if not asks:
            return out
        found = await _ask(conn, coverage, tenant_id, [query(r, d, s) for _, r, d, s in asks])
        for (pid, *_), ev in zip(asks, found, strict=True):
            if _chooses(ev, contract_id):
                out[pid] = (ev, True)
        step += 1


# ----------------------------------------------------------------------------- writes


def _recordset(conn: AsyncConnection, table: Any, names: Sequence[str]) -> tuple[str, str]:
    """(column list, jsonb_to_recordset definition) of `names`, typed as the table's columns."""
    dialect = conn.dialect
    cols = ", ".join(names)
    return cols, ", ".join(f"{n} {table.c[n].type.compile(dialect=dialect)}" for n in names)


_encode = msgspec.json.Encoder().encode


async def _insert(conn: AsyncConnection, built: Sequence[_Built]) -> set[str]:
    """Claims with their lines and audit events in one statement; a member-month that already
    has its original claim (a close retried concurrently) is skipped with its lines and
    events. Returns the ids inserted."""
    if not built:
        return set()
    claim_cols, claim_def = _recordset(conn, claims, list(built[0].row))
    rows = [b.row for b in built]
    lines = [ln for b in built for ln in b.lines]
    events = [e for b in built for e in b.events]
    line_cols, line_def = _recordset(conn, claim_lines, list(lines[0]) if lines else ["claim_id"])
    event_cols, event_def = _recordset(conn, audit_events, list(events[0]))
    sql = f"""
    WITH ins AS (
        INSERT INTO billing.claims ({claim_cols})
        SELECT {claim_cols} FROM jsonb_to_recordset(CAST(:claims AS jsonb)) AS r({claim_def})
        ON CONFLICT (tenant_id, contract_id, patient_id, pmpm_period)
            WHERE pmpm_period IS NOT NULL AND frequency_code = '1' DO NOTHING
        RETURNING id
    ), lines AS (
        INSERT INTO billing.claim_lines ({line_cols})
        SELECT {line_cols} FROM jsonb_to_recordset(CAST(:lines AS jsonb)) AS r({line_def})
        WHERE r.claim_id IN (SELECT id FROM ins)
    ), events AS (
        INSERT INTO audit.events ({event_cols})
        SELECT {event_cols} FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS r({event_def})
        WHERE r.entity_id IN (SELECT CAST(id AS text) FROM ins)
    )
    SELECT CAST(id AS text) AS id FROM ins
    """  # noqa: S608 - column names and types come from the table definitions
    found = await conn.execute(
        text(sql),
        {
            "claims": _encode(rows).decode(),
            "lines": _encode(lines).decode(),
            "events": _encode(events).decode(),
        },
    )
    return {r.id for r in found}


# ----------------------------------------------------------------------------- use case


async def _bill(
    conn: AsyncConnection,
    ctx: _Context,
    coverage: CoveragePort,
    lines: Sequence[Any],
    result: PmpmClaimsResult,
) -> None:
    """Claims for one chunk of the run's billable lines, in a handful of statements."""
    tenant_id, run = ctx.tenant_id, ctx.run
    month_sessions = await _month_sessions(conn, tenant_id, run, [ln.patient_ref for ln in lines])
    wanted: list[tuple[Any, list[_Session]]] = []
    for ln in lines:
        sessions = month_sessions.get(ln.patient_ref, [])
        if not any(s.cmd is not None for s in sessions):
            why = "no readable session" if sessions else "no session found"
            result.skipped.append(Skipped(str(ln.patient_id), why))
        else:
            wanted.append((ln, sessions))
    if not wanted:
        return
    evidence = await _evidence(
        conn,
        coverage,
        tenant_id,
        str(run.contract_id),
        run.period,
        [(str(ln.patient_id), ln.patient_ref, max(s.dos for s in ss), ss) for ln, ss in wanted],
    )
    histories = await repo.histories(
        conn, list(dict.fromkeys((tenant_id, ln.patient_ref) for ln, _ in wanted))
    )
    numbers = await repo.next_pcn_numbers(conn, len(wanted))
    built = [
        _build(
            ctx,
            ln,
            sessions,
            *evidence[str(ln.patient_id)],
            histories[(tenant_id, ln.patient_ref)],
            patient_control_number(tenant_id, number),
            str(uuid.uuid4()),
        )
        for (ln, sessions), number in zip(wanted, numbers, strict=True)
    ]
    inserted = await _insert(conn, built)
    for b in built:
        if b.row["id"] in inserted:
            result.claim_ids.append(b.row["id"])
            status = b.row["status"]
            result.by_status[status] = result.by_status.get(status, 0) + 1
        else:  # made meanwhile by a concurrent close of the same month
            result.already_billed += 1


def _default_pmpm_coverage() -> PmpmCoveragePort:
    from services.billing.adapters.pmpm_coverage import InProcessPmpmCoverage

    return InProcessPmpmCoverage()


async def create_claims(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    run: Any,
    actor: str,
    coverage: CoveragePort | None = None,
    pmpm_coverage: PmpmCoveragePort | None = None,
    today: date | None = None,
    request_id: str | None = None,
    occasion: str = "on the month's close",
) -> PmpmClaimsResult:
    """Bill the closed run's member-months (module doc); `run` is its billing.pmpm_runs row.
    Member-months already billed are skipped, so an adjustment run of a closed month (a
    re-run inside the retro window) bills only those that became billable since. The caller
    holds the contract's PMPM lock and commits."""
    result = PmpmClaimsResult()
    if run.payment_mode != MONTHLY_CLAIM:
        return result
    coverage = coverage or creation.default_coverage()
    pmpm_coverage = pmpm_coverage or _default_pmpm_coverage()
    now = utc_now()
    today = today or utc_today()
    contract_id = str(run.contract_id)
    view = await pmpm_coverage.contract(conn, tenant_id=tenant_id, contract_id=contract_id)
    terms = next(
        (v for v in (view.versions if view else ()) if v.version == run.contract_version), None
    )
    if terms is None:
        raise RuleViolation(
            f"contract {contract_id} has no PMPM version {run.contract_version} to bill "
            f"{run.period:%Y-%m} with",
            code="contract_not_in_force",
        )
    try:
        coding: CodingTerms | None = coding_terms_of(contract_id, terms)
    except ValueError:  # terms the monthly engine cannot read: the run's figures still bill
        coding = None

    lines = await _billable_lines(conn, str(run.id))
    billed = await _billed_patients(conn, tenant_id, run) if lines else set()
    todo = [ln for ln in lines if str(ln.patient_id) not in billed]
    result.already_billed = len(lines) - len(todo)
    if todo:
        # Claims are money: this transaction waits for its WAL at commit, as every claim's
        # does (a run alone may commit without waiting, see `pmpm.create_runs`).
        await conn.execute(text("SET LOCAL synchronous_commit = on"))
    ctx = _Context(tenant_id, run, terms, coding, today, now, actor, request_id)
    for start in range(0, len(todo), CHUNK):
        await _bill(conn, ctx, coverage, todo[start : start + CHUNK], result)
    result.created = len(result.claim_ids)
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=RUN_ENTITY,
        entity_id=str(run.id),
        action="pmpm.claims_created",
        actor=actor,
        request_id=request_id,
        reason=f"monthly claims for {run.period:%Y-%m} {occasion}",
        after={
            "month": f"{run.period:%Y-%m}",
            "billable_lines": len(lines),
            "claims": result.created,
            "already_billed": result.already_billed,
            "by_status": result.by_status,
            "skipped": [{"patient_id": s.patient_id, "reason": s.reason} for s in result.skipped],
        },
    )
    log.info(
        "billing.pmpm.claims_created",
        run_id=str(run.id),
        contract_id=contract_id,
        claims=result.created,
        held=result.by_status.get(ClaimStatus.ON_HOLD.value, 0),
        already_billed=result.already_billed,
        skipped=len(result.skipped),
    )
    return result
