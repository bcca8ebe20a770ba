"""Set-based member-months: the SQL twin of `domain/member_months.py`, for whole rosters.

`member_months_query` gives the SELECT of every member-month of one contract for a list of
months (with its `mm_*` parameters) for billing's reconciliation statement to embed, so billing
joins coverage's member-months without reading coverage's tables itself and without a staging
table (`stage_member_months` still writes the same rows into a transaction-scoped temp table). The rules are those of `domain/member_months.py` (read its
docstring); the statement applies them like this:

1. **As known at** `known_at`: the latest version of each logical span recorded by then
   (`row_number()` over the span's versions, newest first; ties to the later row), then only
   the contract's spans. The span's *first* recorded_at is kept too (a late roster add).
2. **Opt-outs**: a span ends before the earliest opt-out recorded on any of the patient's
   spans of the contract that began on or before it (its own opt-out always counts).
3. Void spans (end before start) and spans with an excluded population flag do not count.
4. **Months** (`unnest` of the requested first days, their bounds computed once) x spans,
   clipped to the month and to the opt-out.
5. A patient with one span (the common case) needs no more than arithmetic. Where several
   spans of one patient fall in one month, the month is expanded into days
   (`generate_series`) and each day's winner is picked as eligibility would (priority, then
   latest start, then span id): that gives the union of covered days, the decisive span on
   the 1st / 15th / last covered day and, under daily proration, Σ rate per covered day.
6. Expected = rate (first_of_month, fifteen_thirty) or round(Σ day rates / days in month)
   half up (daily; exact integer arithmetic, numeric for a negative sum). A tier without a
   rate leaves expected NULL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage import repository as repo
from services.coverage.domain.contracts import ContractVersion, PmpmTerms

# Columns of the staged table, in order.
STAGED_COLUMNS = (
    "period",  # date: first day of the month
    "patient_id",  # uuid
    "patient_ref",  # text
    "member_id",  # text (the decisive span's)
    "tier",  # text (span tier, else the contract's default tier)
    "rate",  # bigint cents, NULL when the tier has no rate
    "span_id",  # text (the decisive span)
    "enrolled_days",  # int: union of covered days in the month
    "days_in_month",  # int
    "expected",  # bigint cents, NULL when a tier has no rate
    "recorded_late",  # bool: the decisive span was first recorded after the month ended
)

_CREATE = """
CREATE TEMP TABLE {table} (
    period date NOT NULL, patient_id uuid NOT NULL, patient_ref text, member_id text NOT NULL,
    tier text, rate bigint, span_id text NOT NULL, enrolled_days int NOT NULL,
    days_in_month int NOT NULL, expected bigint, recorded_late bool NOT NULL
) ON COMMIT DROP
"""

# One SELECT (columns: `STAGED_COLUMNS`); parameters are prefixed `mm_` so that a caller can
# embed it in its own statement (`member_months_query`).
_SELECT = """
WITH ranked AS (
    SELECT v.id, v.span_id, v.patient_id, v.contract_id, v.member_id, v.priority,
           v.effective_from, v.effective_to, v.rate_tier, v.opt_out_date, v.population_flags,
           row_number() OVER (PARTITION BY v.span_id ORDER BY v.recorded_at DESC, v.id DESC)
               AS rn,
           min(v.recorded_at) OVER (PARTITION BY v.span_id) AS first_recorded
    FROM coverage.coverage_span_versions v
    WHERE v.tenant_id = :mm_tenant AND v.recorded_at <= :mm_known_at
),
cur AS (
    SELECT * FROM ranked WHERE rn = 1 AND contract_id = CAST(:mm_contract AS uuid)
),
opts AS (
    SELECT patient_id, array_agg(opt_out_date) AS dates
    FROM cur WHERE opt_out_date IS NOT NULL GROUP BY patient_id
),
rates AS (
    SELECT * FROM unnest(CAST(:mm_tiers AS text[]), CAST(:mm_rates AS bigint[])) AS r(tier, rate)
),
eff AS MATERIALIZED (
    SELECT c.span_id, c.patient_id, p.patient_ref, c.member_id, c.effective_from,
           c.effective_to, c.first_recorded,
           CASE c.priority WHEN 'primary' THEN 0 WHEN 'secondary' THEN 1 ELSE 2 END AS prank,
           COALESCE(c.rate_tier, CAST(:mm_default_tier AS text)) AS tier, rt.rate,
           LEAST(c.opt_out_date,
                 (SELECT min(d) FROM unnest(o.dates) AS d WHERE d >= c.effective_from))
               AS opt_out,
           count(*) OVER (PARTITION BY c.patient_id) AS nspans
    FROM cur c
    JOIN coverage.patients p ON p.id = c.patient_id
    LEFT JOIN opts o ON o.patient_id = c.patient_id
    LEFT JOIN rates rt ON rt.tier = COALESCE(c.rate_tier, CAST(:mm_default_tier AS text))
    WHERE NOT (c.population_flags && CAST(:mm_exclusions AS text[]))
      AND (c.effective_to IS NULL OR c.effective_to >= c.effective_from)
),
m AS MATERIALIZED (
    -- Month bounds computed once per month (not per span x month).
    SELECT p AS period, (p + interval '1 month' - interval '1 day')::date AS mend,
           extract(day FROM p + interval '1 month' - interval '1 day')::int AS dim,
           ((p + interval '1 month')::timestamp AT TIME ZONE 'UTC') AS after_ts
    FROM unnest(CAST(:mm_periods AS date[])) AS p
),
clip AS NOT MATERIALIZED (
    SELECT * FROM (
        SELECT m.period, m.mend, m.dim, m.after_ts, e.patient_id, e.patient_ref, e.member_id, e.tier,
               e.rate, e.span_id, e.first_recorded, e.prank, e.effective_from, e.nspans,
               GREATEST(e.effective_from, m.period) AS first_d,
               LEAST(COALESCE(e.effective_to, m.mend), m.mend, e.opt_out - 1) AS last_d
        FROM eff e JOIN m
          ON e.effective_from <= m.mend AND COALESCE(e.effective_to, m.mend) >= m.period
    ) x WHERE last_d >= first_d
),
mc AS (
    SELECT c.*, count(*) OVER g AS k, bool_or(c.rate IS NULL) OVER g AS null_rate
    FROM clip c WHERE c.nspans > 1
    WINDOW g AS (PARTITION BY c.patient_id, c.period)
),
one AS (
    SELECT period, after_ts, dim, patient_id, patient_ref, member_id, tier, rate, span_id,
           first_recorded, first_d, last_d
    FROM clip WHERE nspans = 1
    UNION ALL
    SELECT period, after_ts, dim, patient_id, patient_ref, member_id, tier, rate, span_id,
           first_recorded, first_d, last_d
    FROM mc WHERE k = 1
),
days AS (
    SELECT DISTINCT ON (mc.patient_id, mc.period, d.day)
           mc.period, mc.after_ts, mc.dim, mc.patient_id, mc.patient_ref, mc.member_id, mc.tier,
           mc.rate, mc.span_id, mc.first_recorded, mc.null_rate, d.day
    FROM mc CROSS JOIN LATERAL (
        SELECT g::date AS day FROM generate_series(mc.first_d, mc.last_d, interval '1 day') g
    ) d
    WHERE mc.k > 1
    ORDER BY mc.patient_id, mc.period, d.day, mc.prank, mc.effective_from DESC, mc.span_id
),
multi AS (
    SELECT patient_id, period, count(*)::int AS enrolled_days, max(day) AS last_day,
           CASE WHEN bool_or(null_rate) THEN NULL ELSE sum(rate)::bigint END AS weighted
    FROM days GROUP BY patient_id, period
),
mm AS (
    SELECT period, after_ts, dim, patient_id, patient_ref, member_id, tier, rate, span_id,
           first_recorded, (last_d - first_d + 1) AS enrolled_days,
           rate * (last_d - first_d + 1) AS weighted
    FROM one
    WHERE CASE CAST(:mm_rule AS text)
            WHEN 'first_of_month' THEN first_d = period
            WHEN 'fifteen_thirty' THEN first_d <= period + 14 AND last_d >= period + 14
            ELSE true END
    UNION ALL
    SELECT d.period, d.after_ts, d.dim, d.patient_id, d.patient_ref, d.member_id, d.tier, d.rate,
           d.span_id, d.first_recorded, x.enrolled_days, x.weighted
    FROM multi x
    JOIN days d ON d.patient_id = x.patient_id AND d.period = x.period
     AND d.day = CASE CAST(:mm_rule AS text)
                   WHEN 'first_of_month' THEN x.period
                   WHEN 'fifteen_thirty' THEN x.period + 14
                   ELSE x.last_day END
)
SELECT period, patient_id, patient_ref, member_id, tier, rate, span_id, enrolled_days,
       dim AS days_in_month,
       CASE WHEN CAST(:mm_rule AS text) <> 'daily' THEN rate
            -- round half up; integer arithmetic for the (usual) non-negative sums
            WHEN weighted >= 0 THEN (2 * weighted::bigint + dim) / (2 * dim)
            ELSE round(weighted::numeric / dim)::bigint END AS expected,
       first_recorded >= after_ts AS recorded_late
FROM mm
"""
_STAGE = "INSERT INTO {table}\n" + _SELECT


@dataclass(frozen=True, slots=True)
class PmpmContract:
    contract_id: str
    payer_id: str
    name: str
    versions: tuple[ContractVersion, ...]


async def pmpm_contract(
    conn: AsyncConnection, tenant_id: str, contract_id: str
) -> PmpmContract | None:
    meta = await repo.get_contract(conn, tenant_id, contract_id)
    if meta is None:
        return None
    stored = await repo.contract_versions_of(conn, tenant_id, meta.id)
    return PmpmContract(meta.id, meta.payer_id, meta.name, tuple(s.version for s in stored))


async def pmpm_contract_ids(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(tenant, contract id) of every contract with PMPM terms in any version, sorted."""
    rows = await conn.execute(
        text(
            "SELECT DISTINCT tenant_id, contract_id::text AS contract_id "
            "FROM coverage.contract_versions "
            "WHERE jsonb_typeof(terms->'pmpm') = 'object' ORDER BY 1, 2"
        )
    )
    return [(r.tenant_id, r.contract_id) for r in rows]


@dataclass(frozen=True, slots=True)
class MemberMonthsQuery:
    """A SELECT of the contract's member-months (columns: `STAGED_COLUMNS`) and its bound
    parameters (all named `mm_*`), for a caller to embed in its own statement (as a CTE or
    subquery), so the rows go straight into the caller's query without a staging table."""

    sql: str
    params: dict[str, Any]


def member_months_query(
    *,
    tenant_id: str,
    contract_id: str,
    periods: Sequence[date],
    known_at: datetime,
    terms: PmpmTerms,
    exclusions: frozenset[str] = frozenset(),
) -> MemberMonthsQuery:
    """The contract's member-months for `periods` (first days) as known at `known_at`."""
    return MemberMonthsQuery(
        _SELECT,
        {
            "mm_tenant": tenant_id,
            "mm_contract": contract_id,
            "mm_known_at": known_at,
            "mm_tiers": [r.tier for r in terms.rates],
            "mm_rates": [r.rate for r in terms.rates],
            "mm_default_tier": terms.default_tier,
            "mm_exclusions": sorted(exclusions),
            "mm_periods": list(periods),
            "mm_rule": terms.proration.value,
        },
    )


async def stage_member_months(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    periods: Sequence[date],
    known_at: datetime,
    terms: PmpmTerms,
    exclusions: frozenset[str] = frozenset(),
) -> str:
    """Create a temp table (dropped at commit) holding the contract's member-months for
    `periods` (first days) as known at `known_at`; returns its name (columns:
    `STAGED_COLUMNS`). Callers may drop it earlier with `drop_staged`. (Billing's
    reconciliation embeds `member_months_query` instead.)"""
    table = f"pmpm_mm_{uuid.uuid4().hex[:16]}"
    query = member_months_query(
        tenant_id=tenant_id,
        contract_id=contract_id,
        periods=periods,
        known_at=known_at,
        terms=terms,
        exclusions=exclusions,
    )
    await conn.execute(text(_CREATE.format(table=table)))
    await conn.execute(text(_STAGE.format(table=table)), query.params)
    await conn.execute(text(f"ANALYZE {table}"))
    return table


async def drop_staged(conn: AsyncConnection, table: str) -> None:
    if not table.startswith("pmpm_mm_") or not table[8:].isalnum():
        raise ValueError("not a staged member-months table")
    await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
