"""Roster import: a whole file (CSV, 834 or 271) applied in one transaction or not at all.

1. The file's SHA-256 per (tenant, payer) makes a re-import a no-op (`replayed`).
2. The file is read into `MemberChange`s; every bad row is reported (422), nothing written.
3. Members are matched to patients: first by a span of the same payer with the same member
   id, then by `patient_ref == member_id`; unknown members become new patients
   (`patient_ref` = member id) and need a last name and birth date.
4. Each change becomes a new version of its logical span (`spans.roster_span_id`) only when
   something differs from the latest version: history is appended, never rewritten.
5. Patients and span versions are written with COPY on the transaction's asyncpg
   connection; one audit event records the import (span rows carry its id).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from services.coverage import repository as repo
from services.coverage.domain.spans import SpanSource, roster_span_id
from services.coverage.rosters.changes import (
    Action,
    Demographics,
    MemberChange,
    ParsedFile,
    RowProblem,
)
from services.coverage.rosters.csv_roster import ColumnMap, parse_roster
from services.coverage.rosters.x271_import import read_271
from services.coverage.rosters.x834_import import read_834
from services.coverage.schemas import ImportRead
from services.coverage.tables import roster_imports
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import BadRequest, FieldProblem, NotFound, RuleViolation
from shared.uow import UnitOfWork

FORMATS = ("csv", "834", "271")
_ONE_DAY = timedelta(days=1)

_SPAN_COPY_COLUMNS = (
    "tenant_id",
    "span_id",
    "version",
    "patient_id",
    "payer_id",
    "contract_id",
    "member_id",
    "group_number",
    "relationship",
    "priority",
    "effective_from",
    "effective_to",
    "rate_tier",
    "opt_out_date",
    "population_flags",
    "source",
    "recorded_at",
    "import_id",
)
_PATIENT_COPY_COLUMNS = (
    "id",
    "tenant_id",
    "patient_ref",
    "first_name",
    "last_name",
    "birth_date",
    "sex",
    "address1",
    "city",
    "state",
    "zip",
    "created_at",
    "updated_at",
)


def read_csv(content: bytes, columns: dict[str, str] | None) -> ParsedFile:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedFile(SpanSource.CSV, [], [RowProblem(0, "file", f"not UTF-8: {exc}")])
    parsed = parse_roster(text, ColumnMap(**columns) if columns else None)
    changes = [
        MemberChange(
            r.row_number,
            r.member_id,
            Action.UPSERT,
            Demographics(
                r.last_name,
                r.first_name,
                r.birth_date,
                r.sex.value,
                r.address1,
                r.city,
                r.state,
                r.zip,
            ),
            r.effective_from,
            r.effective_to,
            r.group,
            r.relationship,
            r.rate_tier,
            r.opt_out_date,
            r.population_flags,
        )
        for r in parsed.rows
    ]
    problems = [RowProblem(e.row_number, e.field, e.message) for e in parsed.errors]
    return ParsedFile(SpanSource.CSV, changes, problems)


def read_file(fmt: str, content: bytes, columns: dict[str, str] | None) -> ParsedFile:
    if fmt == "csv":
        return read_csv(content, columns)
    if fmt == "834":
        return read_834(content)
    return read_271(content)


def _reject(problems: Sequence[RowProblem]) -> RuleViolation:
    ordered = sorted(problems, key=lambda p: p.row)
    return RuleViolation(
        f"the roster has {len({p.row for p in ordered})} bad row(s); nothing was imported",
        code="invalid_roster",
        errors=tuple(
            FieldProblem(f"rows[{p.row}].{p.field}", p.message, "invalid_row") for p in ordered
        ),
        action="fix the listed rows and upload the whole file again",
    )


# A span's comparable state: the columns of a version other than ids and bookkeeping.
_State = tuple[Any, ...]


@dataclass(slots=True)
class _Current:
    version: int
    patient_id: str
    member_id: str
    group: str | None
    relationship: str
    priority: str
    effective_from: date
    effective_to: date | None
    rate_tier: str | None
    opt_out_date: date | None
    flags: list[str]

    def state(self) -> _State:
        return (
            self.patient_id,
            self.member_id,
            self.group,
            self.relationship,
            self.priority,
            self.effective_from,
            self.effective_to,
            self.rate_tier,
            self.opt_out_date,
            self.flags,
        )

    @property
    def is_void(self) -> bool:
        return self.effective_to is not None and self.effective_to < self.effective_from


@dataclass(slots=True)
class Applied:
    members: int = 0
    patients_created: int = 0
    span_versions_added: int = 0
    unchanged: int = 0
    terminated: int = 0


_CURRENT_SQL = """
SELECT DISTINCT ON (span_id) span_id, version, patient_id::text AS patient_id, member_id,
       group_number, relationship, priority, effective_from, effective_to, rate_tier,
       opt_out_date, population_flags
FROM coverage.coverage_span_versions
WHERE tenant_id = $1 AND payer_id = $2 AND contract_id = $3 {members}
ORDER BY span_id, version DESC
"""


def _check_lengths(c: MemberChange, problems: list[RowProblem]) -> None:
    for field, value, limit in (
        ("member_id", c.member_id, 80),
        ("group", c.group, 50),
        ("rate_tier", c.rate_tier, 40),
        ("last_name", c.demographics.last_name, 60),
        ("first_name", c.demographics.first_name, 60),
        ("address1", c.demographics.address1, 100),
        ("city", c.demographics.city, 60),
    ):
        if value is not None and len(value) > limit:
            problems.append(RowProblem(c.row, field, f"{field} is longer than {limit} characters"))


async def apply_changes(
    drv: Any,
    *,
    tenant_id: str,
    payer_id: str,
    contract_id: str,
    parsed: ParsedFile,
    import_id: str,
    now: datetime,
    warnings: list[str],
) -> Applied:
    changes = parsed.changes
    out = Applied()
    problems: list[RowProblem] = []
    member_ids = list(dict.fromkeys(c.member_id for c in changes))
    out.members = len(member_ids)

    # Patients: a span of this payer, else patient_ref = member id, else a new patient.
    patient_of: dict[str, str] = {
        r[0]: r[1]
        for r in await drv.fetch(
            "SELECT DISTINCT ON (member_id) member_id, patient_id::text FROM "
            "coverage.coverage_span_versions WHERE tenant_id = $1 AND payer_id = $2 "
            "AND member_id = ANY($3::text[]) ORDER BY member_id, recorded_at DESC",
            tenant_id,
            payer_id,
            member_ids,
        )
    }
    rest = [m for m in member_ids if m not in patient_of]
    if rest:
        for r in await drv.fetch(
            "SELECT patient_ref, id::text FROM coverage.patients "
            "WHERE tenant_id = $1 AND patient_ref = ANY($2::text[])",
            tenant_id,
            rest,
        ):
            patient_of[r[0]] = r[1]
    new_patients: list[tuple[Any, ...]] = []
    for c in changes:
        _check_lengths(c, problems)
        if c.member_id in patient_of or c.action is not Action.UPSERT:
            continue
        d = c.demographics
        if not d.last_name or d.birth_date is None:
            missing = "last_name" if not d.last_name else "birth_date"
            problems.append(
                RowProblem(
                    c.row, missing, f"new member {c.member_id!r} needs a {missing} to be created"
                )
            )
            continue
        pid = str(uuid.uuid4())
        patient_of[c.member_id] = pid
        new_patients.append(
            (
                pid,
                tenant_id,
                c.member_id,
                d.first_name or "",
                d.last_name,
                d.birth_date,
                d.sex,
                d.address1,
                d.city,
                d.state,
                d.zip,
                now,
                now,
            )
        )
    if problems:
        raise _reject(problems)
    out.patients_created = len(new_patients)

    member_filter = "" if parsed.full_file_as_of else "AND member_id = ANY($4::text[])"
    args: list[Any] = [tenant_id, payer_id, contract_id]
    if not parsed.full_file_as_of:
        args.append(member_ids)
    current: dict[str, _Current] = {}
    by_member: dict[str, list[str]] = {}
    for r in await drv.fetch(_CURRENT_SQL.format(members=member_filter), *args):
        current[r[0]] = _Current(*tuple(r)[1:])
        by_member.setdefault(r["member_id"], []).append(r[0])

    rows: list[tuple[Any, ...]] = []
    source = parsed.source.value

    def write(span_id: str, cur: _Current | None, new: _Current) -> None:
        if cur is not None and cur.state() == new.state():
            out.unchanged += 1
            return
        new.version = cur.version + 1 if cur is not None else 1
        current[span_id] = new
        if cur is None:
            by_member.setdefault(new.member_id, []).append(span_id)
        rows.append(
            (
                tenant_id,
                span_id,
                new.version,
                new.patient_id,
                payer_id,
                contract_id,
                new.member_id,
                new.group,
                new.relationship,
                new.priority,
                new.effective_from,
                new.effective_to,
                new.rate_tier,
                new.opt_out_date,
                new.flags,
                source,
                now,
                import_id,
            )
        )

    for c in changes:
        member = c.member_id
        if c.action is Action.UPSERT and c.effective_from is not None:
            key = roster_span_id(payer_id, contract_id, member, c.effective_from)
            cur = current.get(key)
            write(
                key,
                cur,
                _Current(
                    0,
                    patient_of[member],
                    member,
                    c.group,
                    c.relationship,
                    cur.priority if cur is not None else "primary",
                    c.effective_from,
                    c.effective_to,
                    c.rate_tier,
                    c.opt_out_date,
                    sorted(c.population_flags),
                ),
            )
            continue
        keys = by_member.get(member, [])
        if c.effective_from is not None:
            wanted = roster_span_id(payer_id, contract_id, member, c.effective_from)
            keys = [k for k in keys if k == wanted]
        if c.action is Action.TERMINATE:
            end = c.effective_to
            if end is None:  # readers only emit terminations with an end date
                continue
            targets = [
                k
                for k in keys
                if not current[k].is_void
                and (current[k].effective_to is None or current[k].effective_to > end)  # type: ignore[operator]
            ]
            if not targets:
                warnings.append(f"row {c.row}: member has no open coverage to terminate")
            for k in targets:
                cur = current[k]
                write(k, cur, _replace(cur, effective_to=end))
                out.terminated += 1
        else:  # reinstate
            live = [k for k in keys if not current[k].is_void] or keys
            if not live:
                warnings.append(f"row {c.row}: member has no coverage to reinstate")
                continue
            k = max(live, key=lambda key: current[key].effective_from)
            write(k, current[k], _replace(current[k], effective_to=c.effective_to))

    if parsed.full_file_as_of is not None:
        listed = set(member_ids)
        end = parsed.full_file_as_of - _ONE_DAY
        for k, cur in list(current.items()):
            if (
                cur.member_id not in listed
                and not cur.is_void
                and (cur.effective_to is None or cur.effective_to > end)
            ):
                write(k, cur, _replace(cur, effective_to=end))
                out.terminated += 1

    out.span_versions_added = len(rows)
    if parsed.verify_only:
        return out
    if new_patients:
        await drv.copy_records_to_table(
            "patients", schema_name="coverage", columns=_PATIENT_COPY_COLUMNS, records=new_patients
        )
    if rows:
        await drv.copy_records_to_table(
            "coverage_span_versions",
            schema_name="coverage",
            columns=_SPAN_COPY_COLUMNS,
            records=rows,
        )
    return out


def _replace(cur: _Current, *, effective_to: date | None) -> _Current:
    return _Current(
        0,
        cur.patient_id,
        cur.member_id,
        cur.group,
        cur.relationship,
        cur.priority,
        cur.effective_from,
        effective_to,
        cur.rate_tier,
        cur.opt_out_date,
        cur.flags,
    )


async def import_file(
    uow: UnitOfWork,
    principal: Principal,
    *,
    fmt: str,
    payer_id: str,
    contract_id: str,
    content: bytes,
    request_id: str | None,
) -> ImportRead:
    """Import one roster file inside `uow` and commit (see the module docstring)."""
    if fmt not in FORMATS:
        raise BadRequest(
            f"unknown roster format {fmt!r}; one of: csv, 834, 271", code="unsupported_format"
        )
    tenant = principal.tenant_id
    conn = uow.conn
    payer = await repo.get_payer(conn, tenant, payer_id)
    if payer is None:
        raise NotFound(f"no payer {payer_id}", code="payer_not_found")
    contract = await repo.get_contract(conn, tenant, contract_id)
    if contract is None:
        raise NotFound(f"no contract {contract_id}", code="contract_not_found")
    if contract.payer_id != payer.id:
        raise RuleViolation(
            "the contract belongs to another payer",
            code="contract_payer_mismatch",
            errors=(FieldProblem("contract_id", "not a contract of this payer", "mismatch"),),
        )
    # One import per payer at a time: span versions are numbered from what was read.
    await repo.lock(conn, f"roster:{tenant}:{payer.id}")
    digest = hashlib.sha256(content).hexdigest()
    previous = (
        await conn.execute(
            select(roster_imports).where(
                roster_imports.c.tenant_id == tenant,
                roster_imports.c.payer_id == payer.id,
                roster_imports.c.content_hash == digest,
            )
        )
    ).first()
    if previous is not None:
        s = previous.summary
        return ImportRead(
            import_id=str(previous.id),
            format=previous.format,
            payer_id=payer.id,
            contract_id=str(previous.contract_id),
            replayed=True,
            members=s["members"],
            patients_created=0,
            span_versions_added=0,
            unchanged=s["members"],
            terminated=0,
            imported_at=previous.imported_at,
            warnings=[],
            applied=bool(s.get("applied", True)),
        )
    parsed = read_file(fmt, content, payer.roster_columns)
    if parsed.problems:
        raise _reject(parsed.problems)
    warnings = list(parsed.warnings or [])
    import_id = str(uuid.uuid4())
    now = utc_now()
    applied = await apply_changes(
        await repo.driver(conn),
        tenant_id=tenant,
        payer_id=payer.id,
        contract_id=contract.id,
        parsed=parsed,
        import_id=import_id,
        now=now,
        warnings=warnings,
    )
    summary = {
        "members": applied.members,
        "patients_created": applied.patients_created,
        "span_versions_added": applied.span_versions_added,
        "unchanged": applied.unchanged,
        "terminated": applied.terminated,
        "warnings": len(warnings),
        "applied": not parsed.verify_only,
    }
    await conn.execute(
        insert(roster_imports).values(
            id=import_id,
            tenant_id=tenant,
            payer_id=payer.id,
            contract_id=contract.id,
            format=fmt,
            content_hash=digest,
            summary=summary,
            actor=principal.actor,
            imported_at=now,
        )
    )
    await audit.append(
        conn,
        tenant_id=tenant,
        entity_type="roster_import",
        entity_id=import_id,
        action="roster.imported" if not parsed.verify_only else "roster.verified",
        actor=principal.actor,
        request_id=request_id,
        after={
            **summary,
            "format": fmt,
            "payer_id": payer.id,
            "contract_id": contract.id,
            "content_hash": digest,
        },
        new_entity=True,
    )
    await uow.commit()
    return ImportRead(
        import_id=import_id,
        format=fmt,
        payer_id=payer.id,
        contract_id=contract.id,
        replayed=False,
        members=applied.members,
        patients_created=applied.patients_created,
        span_versions_added=applied.span_versions_added,
        unchanged=applied.unchanged,
        terminated=applied.terminated,
        imported_at=now,
        warnings=warnings,
        applied=not parsed.verify_only,
    )
