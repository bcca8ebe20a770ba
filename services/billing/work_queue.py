"""The billing work queue: opening items (from 835 denials, 999/277CA rejections, failed
submissions, unmatched remittances), priority, and the biller's take-next.

`open_work_item` is the one way to create an item; it is idempotent on (tenant, source,
claim or batch, primary reason code), so re-processing an acknowledgment or a remittance never
makes a second item. Priority uses the documented formula in
services/billing/domain/work_items.py (dollars on a log scale + deadline urgency, times the
payer/CARC overturn likelihood) and is refreshed daily by the worker, since urgency grows as
the deadline nears.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.work_items import (
    DOLLAR_WEIGHT,
    NO_DEADLINE_DAYS,
    URGENCY_HALF_LIFE,
    URGENCY_WEIGHT,
    InvalidWorkItemTransition,
    Recommendation,
    Route,
    WorkItemCategory,
    WorkItemStatus,
    priority,
    recommend,
    work_item_transition,
)
from services.billing.tables import claims
from services.billing.tables_remittance import work_item_notes, work_items
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now, utc_today
from shared.codes import DefaultAction
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation, StaleVersion
from shared.money import format_cents
from shared.uow import Database

__all__ = [
    "REJECTION_SOURCES",
    "WorkItemSpec",
    "create_work_item",
    "open_work_item",
    "refresh_priorities",
]

ENTITY = "work_item"
# Sources whose items are rejections (never filed): the fix is a new claim, not an appeal.
REJECTION_SOURCES = frozenset({"999", "277ca", "submission", "ta1"})


@dataclass(frozen=True, slots=True)
class WorkItemSpec:
    """Everything a work item records beyond what `open_work_item` callers pass."""

    category: WorkItemCategory
    source: str
    summary: str
    claim_id: str | None = None
    batch_id: str | None = None
    claim_payment_id: str | None = None
    payer_id: str | None = None
    amount_cents: int = 0
    reasons: tuple[dict[str, Any], ...] = ()
    recommended_action: str = DefaultAction.CORRECT_RESUBMIT.value
    recommendation: str = ""
    route: str = Route.BILLING_STAFF.value
    timely_filing_deadline: date | None = None
    appeal_deadline: date | None = None
    no_appeal: bool = False


def dedupe_key(
    source: str, claim_id: str | None, batch_id: str | None, reasons: tuple[dict[str, Any], ...]
) -> str:
    code = str(reasons[0].get("code", "")) if reasons else ""
    return f"{source}|{claim_id or ''}|{batch_id or ''}|{code}"[:300]


def _category(value: str) -> WorkItemCategory:
    try:
        return WorkItemCategory(value)
    except ValueError:
        return WorkItemCategory.OTHER


async def open_work_item(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    category: str,
    source: str,
    summary: str,
    actor: str,
    claim_id: str | None = None,
    batch_id: str | None = None,
    amount_cents: int = 0,
    reasons: list[dict[str, Any]] | None = None,
    deadline: date | None = None,
) -> str:
    """Open (or find) the work item for this problem; returns its id.

    For rejection sources (999, 277CA, submission) the claim was never filed: the
    recommended action is a new claim and `deadline` defaults to the claim's timely-filing
    deadline, which keeps running. Runs in the caller's transaction.
    """
    cat = _category(category)
    reasons_t = tuple(reasons or ())
    tf_deadline = deadline
    payer_id = None
    if claim_id is not None:
        row = (
            await conn.execute(
                select(claims.c.timely_filing_deadline, claims.c.payer_id).where(
                    claims.c.tenant_id == tenant_id, claims.c.id == claim_id
                )
            )
        ).first()
        if row is not None:
            payer_id = row.payer_id
            if tf_deadline is None:
                tf_deadline = row.timely_filing_deadline
    if source in REJECTION_SOURCES:
        rec = Recommendation(
            action=DefaultAction.CORRECT_RESUBMIT,
            route=Route.BILLING_STAFF,
            text=recommend(
                WorkItemCategory.SUBMISSION_FAILURE, DefaultAction.CORRECT_RESUBMIT
            ).text,
        )
        action = "new_claim"
    else:
        rec = recommend(cat, DefaultAction.CORRECT_RESUBMIT)
        action = rec.action.value
    spec = WorkItemSpec(
        category=cat,
        source=source,
        summary=summary,
        claim_id=claim_id,
        batch_id=batch_id,
        payer_id=payer_id,
        amount_cents=amount_cents,
        reasons=reasons_t,
        recommended_action=action,
        recommendation=rec.text,
        route=rec.route.value,
        timely_filing_deadline=tf_deadline,
        no_appeal=source in REJECTION_SOURCES,
    )
    item_id, _ = await create_work_item(conn, tenant_id=tenant_id, spec=spec, actor=actor)
    return item_id


async def create_work_item(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    spec: WorkItemSpec,
    actor: str,
    today: date | None = None,
) -> tuple[str, bool]:
    """Insert the item unless its dedupe key exists; returns (id, created)."""
    today = today or utc_today()
    primary_reason = str(spec.reasons[0].get("code", ""))[:20] if spec.reasons else ""
    rate = (
        await overturn_rate(
            conn,
            tenant_id=tenant_id,
            payer_id=spec.payer_id,
            primary_reason=primary_reason,
            today=today,
        )
        if spec.payer_id
        else None
    )
    pr = priority(
        spec.amount_cents, [spec.timely_filing_deadline, spec.appeal_deadline], today, rate
    )
    key = dedupe_key(spec.source, spec.claim_id, spec.batch_id, spec.reasons)
    item_id = str(uuid.uuid4())
    values = {
        "id": item_id,
        "tenant_id": tenant_id,
        "dedupe_key": key,
        "source": spec.source,
        "category": spec.category.value,
        "claim_id": spec.claim_id,
        "batch_id": spec.batch_id,
        "claim_payment_id": spec.claim_payment_id,
        "payer_id": spec.payer_id,
        "summary": spec.summary,
        "reasons": list(spec.reasons),
        "primary_reason": primary_reason,
        "recommended_action": spec.recommended_action,
        "recommendation": spec.recommendation,
        "route": spec.route,
        "amount_cents": spec.amount_cents,
        "timely_filing_deadline": spec.timely_filing_deadline,
        "appeal_deadline": spec.appeal_deadline,
        "no_appeal": spec.no_appeal,
        "priority_score": round(pr.score, 6),
        "past_due": pr.past_due,
        "status": "open",
    }
    inserted = (
        await conn.execute(
            pg_insert(work_items)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
            .returning(work_items.c.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        existing = (
            await conn.execute(
                select(work_items.c.id).where(
                    work_items.c.tenant_id == tenant_id, work_items.c.dedupe_key == key
                )
            )
        ).scalar_one()
        return str(existing), False
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=ENTITY,
        entity_id=item_id,
        action="work_item.opened",
        actor=actor,
        after=_audit_view(values),
        new_entity=True,
    )
    if spec.claim_id is not None:
        await audit.append(
            conn,
            tenant_id=tenant_id,
            entity_type="claim",
            entity_id=spec.claim_id,
            action="claim.work_item_opened",
            actor=actor,
            after={"work_item_id": item_id, "category": spec.category.value, "source": spec.source},
        )
    return item_id, True


def _audit_view(values: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "source",
        "category",
        "claim_id",
        "batch_id",
        "amount_cents",
        "recommended_action",
        "primary_reason",
        "status",
    )
    out = {k: values[k] for k in keep}
    for k in ("timely_filing_deadline", "appeal_deadline"):
        out[k] = values[k].isoformat() if values[k] else None
    return out


# The historical overturn rate of a (payer, primary reason code): appeals of such items
# decided (won or lost) in the last OVERTURN_WINDOW_DAYS, once at least OVERTURN_MIN_DECIDED
# of them are; below that the rate is unknown (likelihood 1).
OVERTURN_WINDOW_DAYS = 365
OVERTURN_MIN_DECIDED = 5
_RATES_CTE = """
rates AS (
  SELECT a.tenant_id, a.payer_id, wi.primary_reason,
         CAST(count(*) FILTER (WHERE a.status = 'won') AS float8) / count(*) AS rate
  FROM billing.appeals a
  JOIN billing.work_items wi ON wi.id = a.work_item_id
  WHERE a.status IN ('won', 'lost') AND a.tenant_id = coalesce(:tenant, a.tenant_id)
    AND a.payer_id IS NOT NULL
    AND a.decided_on >= CAST(:today AS date) - CAST(:window AS int)
  GROUP BY 1, 2, 3
  HAVING count(*) >= CAST(:min_decided AS int)
)"""

# The same formula as domain.work_items.priority_score, set-based, for the daily refresh.
_REFRESH_SQL = f"""
WITH {_RATES_CTE}
UPDATE billing.work_items w SET
  priority_score = round(CAST(
    (CAST(:dw AS float8) * log(1 + greatest(w.amount_cents, 0) / 100.0)
     + CAST(:uw AS float8) * CAST(:hl AS float8) / (:hl + coalesce(d.days, :nd)))
    * coalesce(0.25 + 0.75 * d.rate, 1)
    AS numeric), 6),
  past_due = d.past_due
FROM (
  SELECT id, rate,
    CASE WHEN nearest_up IS NOT NULL THEN nearest_up - CAST(:today AS date) END AS days,
    (nearest_up IS NULL AND latest IS NOT NULL) AS past_due
  FROM (
    SELECT i.id, r.rate,
      (SELECT min(x) FROM unnest(ARRAY[i.timely_filing_deadline, i.appeal_deadline]) x
        WHERE x >= CAST(:today AS date)) AS nearest_up,
      greatest(i.timely_filing_deadline, i.appeal_deadline) AS latest
    FROM billing.work_items i
    LEFT JOIN rates r ON r.tenant_id = i.tenant_id AND r.payer_id = i.payer_id
                     AND r.primary_reason = i.primary_reason
    WHERE i.tenant_id = coalesce(:tenant, i.tenant_id) AND i.status <> 'resolved'
  ) s
) d
WHERE w.id = d.id
"""  # noqa: S608 - constants only
_RATE_SQL = f"""
WITH {_RATES_CTE}
SELECT rate FROM rates WHERE payer_id = CAST(:payer AS uuid) AND primary_reason = :reason
"""  # noqa: S608 - constants only


_RATES_SQL = f"""
WITH {_RATES_CTE}
SELECT CAST(payer_id AS text) AS payer_id, primary_reason, rate FROM rates
"""  # noqa: S608 - constants only


async def overturn_rates(
    conn: AsyncConnection, *, tenant_id: str, today: date
) -> dict[tuple[str, str], float]:
    """Every known overturn rate of the tenant, by (payer id, primary reason code)."""
    rows = await conn.execute(
        text(_RATES_SQL),
        {
            "tenant": tenant_id,
            "today": today,
            "window": OVERTURN_WINDOW_DAYS,
            "min_decided": OVERTURN_MIN_DECIDED,
        },
    )
    return {(r.payer_id, r.primary_reason): float(r.rate) for r in rows}


def apply_overturn_rates(
    items: list[dict[str, Any]], rates: dict[tuple[str, str], float], today: date
) -> None:
    """Rescore item rows built without the overturn factor (bulk creation) in place."""
    if not rates:
        return
    for item in items:
        rate = rates.get((str(item["payer_id"]), item["primary_reason"]))
        if rate is None:
            continue
        deadlines = [
            date.fromisoformat(d) if isinstance(d, str) else d
            for d in (item["timely_filing_deadline"], item["appeal_deadline"])
        ]
        pr = priority(item["amount_cents"], deadlines, today, rate)
        item["priority_score"] = round(pr.score, 6)


async def overturn_rate(
    conn: AsyncConnection, *, tenant_id: str, payer_id: str, primary_reason: str, today: date
) -> float | None:
    """The payer's overturn rate for items with this primary reason (None: too few decided
    appeals to tell)."""
    rate = (
        await conn.execute(
            text(_RATE_SQL),
            {
                "tenant": tenant_id,
                "payer": payer_id,
                "reason": primary_reason,
                "today": today,
                "window": OVERTURN_WINDOW_DAYS,
                "min_decided": OVERTURN_MIN_DECIDED,
            },
        )
    ).scalar_one_or_none()
    return None if rate is None else float(rate)


async def refresh_priorities(
    conn: AsyncConnection, *, today: date, tenant_id: str | None = None
) -> int:
    """Recompute every unresolved item's priority for `today` (one statement)."""
    res = await conn.execute(
        text(_REFRESH_SQL),
        {
            "today": today,
            "tenant": tenant_id,
            "dw": DOLLAR_WEIGHT,
            "uw": URGENCY_WEIGHT,
            "hl": URGENCY_HALF_LIFE,
            "nd": NO_DEADLINE_DAYS,
            "window": OVERTURN_WINDOW_DAYS,
            "min_decided": OVERTURN_MIN_DECIDED,
        },
    )
    return res.rowcount or 0


# ----------------------------------------------------------------------------- reading


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def item_read(r: Any, *, notes: list[Any] | None = None, claim_status: str | None = None) -> Any:
    from services.billing.remittance_schemas import NoteRead, WorkItemRead

    return WorkItemRead(
        id=str(r.id),
        status=r.status,
        category=r.category,
        source=r.source,
        summary=r.summary,
        claim_id=str(r.claim_id) if r.claim_id else None,
        batch_id=r.batch_id,
        payer_id=str(r.payer_id) if r.payer_id else None,
        recommended_action=r.recommended_action,
        recommendation=r.recommendation,
        route=r.route,
        amount=format_cents(r.amount_cents),
        timely_filing_deadline=r.timely_filing_deadline,
        appeal_deadline=r.appeal_deadline,
        no_appeal=r.no_appeal,
        priority_score=r.priority_score,
        past_due=r.past_due,
        assignee=r.assignee,
        disposition=r.disposition,
        reasons=list(r.reasons or []),
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
        claim_status=claim_status,
        notes=(
            [NoteRead(author=n.author, body=n.body, created_at=n.created_at) for n in notes]
            if notes is not None
            else None
        ),
    )


def _not_found(item_id: str) -> NotFound:
    return NotFound(f"work item {item_id} not found", code="work_item_not_found")


async def get_row(
    conn: AsyncConnection, tenant_id: str, item_id: str, *, for_update: bool = False
) -> Any:
    iid = _uuid(item_id)
    if iid is None:
        raise _not_found(item_id)
    stmt = select(work_items).where(work_items.c.id == iid, work_items.c.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise _not_found(item_id)
    return row


async def get_item(conn: AsyncConnection, principal: Principal, item_id: str) -> Any:
    row = await get_row(conn, principal.tenant_id, item_id)
    notes = list(
        await conn.execute(
            select(work_item_notes)
            .where(work_item_notes.c.work_item_id == row.id)
            .order_by(work_item_notes.c.id)
        )
    )
    status = None
    if row.claim_id is not None:
        status = (
            await conn.execute(
                select(claims.c.status).where(
                    claims.c.id == row.claim_id, claims.c.tenant_id == principal.tenant_id
                )
            )
        ).scalar_one_or_none()
    return item_read(row, notes=notes, claim_status=status)


@dataclass(frozen=True, slots=True)
class ItemFilter:
    status: tuple[str, ...] = ("open", "in_progress", "blocked")
    category: tuple[str, ...] = ()
    assignee: str | None = None
    payer_id: str | None = None
    claim_id: str | None = None
    route: str | None = None


def _encode_cursor(score: float, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{item_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        score, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(score), str(uuid.UUID(item_id))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RuleViolation(
            "the cursor is not valid",
            code="invalid_cursor",
            errors=(FieldProblem("after", "use next_cursor from the previous page"),),
        ) from exc


async def list_items(
    conn: AsyncConnection, principal: Principal, f: ItemFilter, *, after: str | None, limit: int
) -> Any:
    """Highest priority first (ties: newest id last), keyset-paginated."""
    from services.billing.remittance_schemas import WorkItemPage

    problems = [
        FieldProblem("status", f"unknown status {s!r}")
        for s in f.status
        if s not in {"open", "in_progress", "blocked", "resolved"}
    ]
    problems += [
        FieldProblem("category", f"unknown category {c!r}")
        for c in f.category
        if c not in {x.value for x in WorkItemCategory}
    ]
    for name, value in (("payer", f.payer_id), ("claim", f.claim_id)):
        if value is not None and _uuid(value) is None:
            problems.append(FieldProblem(name, "not a uuid"))
    if problems:
        raise RuleViolation("invalid filter", code="invalid_query", errors=tuple(problems))
    w = work_items.c
    stmt = select(work_items).where(w.tenant_id == principal.tenant_id, w.status.in_(f.status))
    if f.category:
        stmt = stmt.where(w.category.in_(f.category))
    if f.assignee:
        stmt = stmt.where(w.assignee == f.assignee)
    if f.payer_id:
        stmt = stmt.where(w.payer_id == f.payer_id)
    if f.claim_id:
        stmt = stmt.where(w.claim_id == f.claim_id)
    if f.route:
        stmt = stmt.where(w.route == f.route)
    if after:
        score, last = _decode_cursor(after)
        stmt = stmt.where(
            (w.priority_score < score) | ((w.priority_score == score) & (w.id < last))
        )
    rows = list(
        await conn.execute(stmt.order_by(w.priority_score.desc(), w.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _encode_cursor(rows[-1].priority_score, str(rows[-1].id)) if more and rows else None
    return WorkItemPage(items=[item_read(r) for r in rows], next_cursor=cursor)


# ----------------------------------------------------------------------------- working

# `next` is ONE statement (one round trip; no BEGIN/COMMIT around it on the hot path):
#
# 1. pick the top open item (FOR UPDATE SKIP LOCKED on the queue's partial index
#    ix_work_items_queue, walked backwards) and assign it;
# 2. read the item's audit chain head and append the `work_item.assigned` event, its hash
#    computed in SQL over the canonical payload built here (`audit.hash_template` /
#    `audit.sql_event_hash`, the same bytes `audit.event_hash` hashes; a test verifies
#    chains written this way);
# 3. `synchronous_commit` is off for this statement's transaction only.
#
# The chain head is read with the statement's snapshot. If another transaction appended to
# this item's chain and committed after that snapshot was taken (it then no longer holds the
# row, or SKIP LOCKED would have passed it by), the insert collides with the chain's unique
# (tenant, type, id, seq): the whole statement fails, nothing is applied, and it runs again
# on a fresh snapshot.
_TAKE_BASE = """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true) AS sc),
pick AS (
    SELECT id FROM billing.work_items
    WHERE tenant_id = $1 AND status = 'open'{extra}
    ORDER BY priority_score DESC, id DESC
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), upd AS (
    UPDATE billing.work_items w
    SET status = 'in_progress', assignee = $2, version = w.version + 1, updated_at = now()
    FROM pick, cfg
    WHERE w.id = pick.id AND cfg.sc IS NOT NULL
    RETURNING w.*
), ev AS (
    SELECT upd.id::text AS eid, COALESCE(h.seq, 0) + 1 AS seq,
           COALESCE(h.hash, '{genesis}') AS prev
    FROM upd LEFT JOIN LATERAL (
        SELECT e.seq, e.hash FROM audit.events e
        WHERE e.tenant_id = $1 AND e.entity_type = '{entity}' AND e.entity_id = upd.id::text
        ORDER BY e.seq DESC
        LIMIT 1
    ) h ON true
), ins AS (
    INSERT INTO audit.events (tenant_id, entity_type, entity_id, seq, action, actor, request_id,
                              reason, before, after, occurred_at, prev_hash, hash)
    SELECT $1, '{entity}', ev.eid, ev.seq, '{action}', $2, $3, '{reason}', $4::jsonb, $5::jsonb,
           $6, ev.prev, {hash}
    FROM ev
    RETURNING seq
)
SELECT upd.*, ins.seq AS event_seq FROM upd CROSS JOIN ins
"""
_TAKE_ACTION = "work_item.assigned"
_TAKE_REASON = "next"
_TAKE_FIXED_ARGS = 7


def _take_sql(route: bool, category: bool) -> str:
    extra = ""
    n = _TAKE_FIXED_ARGS
    if route:
        n += 1
        extra += f" AND route = ${n}"
    if category:
        n += 1
        extra += f" AND category = ${n}"
    return _TAKE_BASE.format(
        extra=extra,
        genesis=audit.GENESIS,
        entity=ENTITY,
        action=_TAKE_ACTION,
        reason=_TAKE_REASON,
        hash=audit.sql_event_hash("$7::text", "ev.eid", "ev.seq", "ev.prev"),
    )


# One statement per filter combination, so each gets a plan on the queue index.
_TAKE_SQL = {(r, c): _take_sql(r, c) for r in (False, True) for c in (False, True)}
_TAKE_BEFORE = {"status": WorkItemStatus.OPEN.value, "assignee": None}
_json = msgspec.json.Encoder()
# Attempts before giving up when the item's chain keeps changing under the take.
_TAKE_ATTEMPTS = 5


def _take_args(
    principal: Principal, route: str | None, category: str | None, request_id: str | None
) -> list[Any]:
    at = utc_now()
    after = {"status": WorkItemStatus.IN_PROGRESS.value, "assignee": principal.actor}
    template = audit.hash_template(
        tenant_id=principal.tenant_id,
        entity_type=ENTITY,
        action=_TAKE_ACTION,
        actor=principal.actor,
        request_id=request_id,
        reason=_TAKE_REASON,
        before=_TAKE_BEFORE,
        after=after,
        occurred_at=at,
    )
    args: list[Any] = [
        principal.tenant_id,
        principal.actor,
        request_id,
        _json.encode(_TAKE_BEFORE).decode(),
        _json.encode(after).decode(),
        at,
        template,
    ]
    if route is not None:
        args.append(route)
    if category is not None:
        args.append(category)
    return args


class _Row:
    """Attribute access over an asyncpg record (what `item_read` reads)."""

    __slots__ = ("_r",)

    def __init__(self, record: Any) -> None:
        self._r = record

    def __getattr__(self, name: str) -> Any:
        return self._r[name]


def _taken(row: dict[str, Any]) -> Any:
    reasons = row["reasons"]
    if isinstance(reasons, str | bytes):  # depends on the connection's jsonb codec
        row["reasons"] = msgspec.json.decode(reasons)
    return item_read(_Row(row))


def _busy() -> Conflict:
    return Conflict("the work item's history keeps changing; try again", code="busy")


async def take_next(
    conn: AsyncConnection,
    principal: Principal,
    *,
    route: str | None = None,
    category: str | None = None,
    request_id: str | None = None,
) -> Any | None:
    """Assign the highest-priority open item to the caller, inside the caller's unit of work.
    Rows other billers are taking right now are skipped (FOR UPDATE SKIP LOCKED), so two
    billers never get the same one.

    The assignment and its audit event are one statement (see `_TAKE_BASE`), committed with
    the caller's transaction with `synchronous_commit = off` for that transaction only: a
    crash can lose the last fraction of a second of takes, and a lost take loses both (the
    item is simply open again, with no event claiming otherwise); it can never leave one
    without the other. Each attempt runs in a savepoint, so a chain collision is retried
    without aborting the caller's transaction.
    """
    sql = _TAKE_SQL[(route is not None, category is not None)]
    for _ in range(_TAKE_ATTEMPTS):
        args = tuple(_take_args(principal, route, category, request_id))
        try:
            async with conn.begin_nested():
                rec = (await conn.exec_driver_sql(sql, args)).first()
        except IntegrityError as exc:
            if not _is_chain_collision(exc.orig):
                raise
            continue
        return None if rec is None else _taken(dict(rec._mapping))
    raise _busy()  # pragma: no cover - needs five appends to one item racing this take


async def take_next_fast(
    db: Database,
    principal: Principal,
    *,
    route: str | None = None,
    category: str | None = None,
    request_id: str | None = None,
) -> Any | None:
    """`take_next` as its own single-statement transaction on a raw pooled asyncpg connection
    in autocommit: one round trip, no ORM layer (the queue's hot path)."""
    sql = _TAKE_SQL[(route is not None, category is not None)]
    for _ in range(_TAKE_ATTEMPTS):
        args = _take_args(principal, route, category, request_id)
        try:
            async with db.raw() as drv:
                rec = await drv.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            if not _is_chain_collision(exc):
                raise
            continue
        return None if rec is None else _taken(dict(rec))
    raise _busy()  # pragma: no cover - needs five appends to one item racing this take


def _is_chain_collision(exc: BaseException | None) -> bool:
    """A unique violation on the audit chain's (tenant, type, id, seq) (asyncpg's error, or
    SQLAlchemy's DBAPI adapter around it)."""
    found = exc if isinstance(exc, asyncpg.UniqueViolationError) else None
    if found is None and exc is not None:
        found = exc.__cause__ if isinstance(exc.__cause__, asyncpg.UniqueViolationError) else None
    return found is not None and str(found.constraint_name or "").startswith("uq_events_")


async def set_status(
    conn: AsyncConnection,
    row: Any,
    *,
    tenant_id: str,
    actor: str,
    target: WorkItemStatus,
    reason: str | None,
    request_id: str | None,
    assignee: str | object | None = ...,
    disposition: str | object | None = ...,
) -> Any:
    """Validated status move (or assignee change) with its audit event; returns the new row."""
    current = WorkItemStatus(row.status)
    if target != current:
        try:
            work_item_transition(current, target)
        except InvalidWorkItemTransition as exc:
            raise Conflict(str(exc), code="invalid_transition") from None
    values: dict[str, Any] = {
        "status": target.value,
        "version": work_items.c.version + 1,
        "updated_at": func.now(),
    }
    if assignee is not ...:
        values["assignee"] = assignee
    elif target is WorkItemStatus.OPEN:
        values["assignee"] = None
    if disposition is not ...:
        values["disposition"] = disposition
    if target is WorkItemStatus.RESOLVED:
        values["resolved_at"] = func.now()
    elif current is WorkItemStatus.RESOLVED:
        values["resolved_at"] = None
        values["disposition"] = None
    new = (
        await conn.execute(
            update(work_items)
            .where(work_items.c.id == row.id, work_items.c.version == row.version)
            .values(**values)
            .returning(*work_items.c)
        )
    ).first()
    if new is None:  # pragma: no cover - callers hold the row lock
        raise StaleVersion("the work item changed", code="stale_version")
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=ENTITY,
        entity_id=str(row.id),
        action=f"work_item.{target.value}" if target != current else "work_item.updated",
        actor=actor,
        request_id=request_id,
        reason=reason,
        before={"status": current.value, "assignee": row.assignee, "disposition": row.disposition},
        after={"status": new.status, "assignee": new.assignee, "disposition": new.disposition},
    )
    return new


def _stale(current: int, sent: int) -> StaleVersion:
    return StaleVersion(
        f"the work item changed since it was read (version {sent}, now {current})",
        code="stale_version",
        errors=(FieldProblem("version", f"current version is {current}", "stale"),),
        action="read the work item again and reapply the change",
    )


async def update_item(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: Any,
    *,
    request_id: str | None,
) -> Any:
    row = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    if cmd.version != row.version:
        raise _stale(row.version, cmd.version)
    if cmd.status is None and cmd.assignee is None:
        raise RuleViolation(
            "nothing to change",
            code="empty_update",
            errors=(FieldProblem("", "send status and/or assignee", "empty"),),
        )
    target = WorkItemStatus(cmd.status.value) if cmd.status else WorkItemStatus(row.status)
    if target is WorkItemStatus.RESOLVED:
        raise RuleViolation(
            "a work item is resolved by an action, not by setting its status",
            code="resolve_by_action",
            errors=(FieldProblem("status", "use one of the item's actions", "invalid"),),
        )
    new = await set_status(
        conn,
        row,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        target=target,
        reason=cmd.reason,
        request_id=request_id,
        assignee=cmd.assignee if cmd.assignee is not None else ...,
    )
    return item_read(new)


async def add_note(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    body: str,
    *,
    request_id: str | None,
) -> Any:
    row = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    await conn.execute(
        work_item_notes.insert().values(
            work_item_id=row.id, tenant_id=principal.tenant_id, author=principal.actor, body=body
        )
    )
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type=ENTITY,
        entity_id=str(row.id),
        action="work_item.note_added",
        actor=principal.actor,
        request_id=request_id,
        after={"chars": len(body)},
    )
    return await get_item(conn, principal, item_id)
