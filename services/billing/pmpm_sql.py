"""The reconciliation statement: one SELECT computes every line of every run in a batch (one run
per month of one contract version), classifying all members at once, and yields them as the
runs' line chunks (billing.pmpm_line_chunks: one row per run per bucket of members, an array
per line field), writes them and returns each run's summary computed from the chunks it wrote.
`pmpm_reconcile.reconcile` runs it for all the months at once, or for shares of the months on parallel
connections.

Inputs joined per (month, member id):
* the member-months (coverage's SELECT, embedded as the CTE `mm` through the port: who counts,
  tier, rate, proration, expected);
* documented activity (billing.sessions: minutes, interventions per patient and month);
* payments (billing.pmpm_payments, imported up to the run's `as_of`);
* for adjustment runs, the closed run's lines (what changed since the month was locked).

`CLASSIFY_SQL` is the SQL form of `services.billing.domain.pmpm.classify`; a test evaluates
both on the same generated facts. Lines are not numbered (numbering a whole roster in member
order cost a sort of every line); a line is identified by (run, member id, patient id) and read
in that order (member id in byte order). A re-run with the same inputs writes identical lines.
"""

from __future__ import annotations

from services.billing.tables_pmpm import LINE_ARRAY_NAMES

# Over a relation with columns named like `LineFacts`' fields (recouped is a bool here).
CLASSIFY_SQL = """CASE
    WHEN NOT on_roster THEN
        CASE WHEN COALESCE(prior_on_roster, false) OR recouped THEN 'retro_term'
             ELSE 'paid_not_on_roster' END
    WHEN activity_met = false THEN 'activity_not_met'
    WHEN positive_payments > 1 AND received > expected THEN 'duplicate'
    WHEN paid_tier IS NOT NULL AND paid_tier IS DISTINCT FROM tier AND received <> expected
        THEN 'wrong_tier'
    WHEN prior_on_roster = false OR recorded_late THEN 'retro_add'
    WHEN received = expected THEN 'paid_as_expected'
    WHEN received = 0 THEN 'missing'
    WHEN received < expected THEN 'underpaid'
    ELSE 'overpaid'
END"""

_MINUTES = """CASE WHEN (s.payload->>'start_time') IS NOT NULL AND (s.payload->>'end_time') IS NOT NULL
    THEN floor(extract(epoch FROM ((s.payload->>'end_time')::time
                                   - (s.payload->>'start_time')::time)) / 60)::int
    ELSE COALESCE((s.payload->>'documented_minutes')::int, 0) END"""

_RECONCILE_TEMPLATE = """
WITH mm AS (
__MEMBER_MONTHS__
),
runs AS (
    SELECT r.*, extract(day FROM r.period + interval '1 month' - interval '1 day')::int AS dim
    FROM unnest(CAST(:periods AS date[]), CAST(:run_ids AS uuid[]),
                CAST(:base_ids AS uuid[])) AS r(period, run_id, base_run_id)
),
act AS (
    SELECT s.patient_ref AS act_ref, date_trunc('month', s.date_of_service)::date AS act_period,
           sum(__MINUTES__)::int AS minutes,
           sum(COALESCE(jsonb_array_length(s.payload->'interventions'), 0))::int
               AS interventions
    FROM billing.sessions s
    WHERE s.tenant_id = :tenant AND s.date_of_service >= :first_day
      AND s.date_of_service < :after_day AND s.state <> 'failed' AND s.created_at <= :as_of
      -- only the runs' months (a share of a parallel run has every other month)
      AND CAST(date_trunc('month', s.date_of_service) AS date) = ANY(CAST(:periods AS date[]))
    GROUP BY 1, 2
),
pay AS (
    SELECT p.member_id, p.period, sum(p.amount_cents)::bigint AS received,
           (count(*) FILTER (WHERE p.amount_cents > 0))::int AS positive_payments,
           count(*)::int AS payment_count,
           COALESCE(sum(p.amount_cents) FILTER (WHERE p.amount_cents < 0), 0)::bigint
               AS recouped_cents,
           max(p.tier) AS named_tier
    FROM billing.pmpm_payments p
    WHERE p.tenant_id = :tenant AND p.contract_id = CAST(:contract AS uuid)
      AND p.period = ANY(CAST(:periods AS date[])) AND p.recorded_at <= :as_of
    GROUP BY 1, 2
),
base AS (
    SELECT r.period, l.member_id, true AS b_present, l.on_roster AS b_on_roster,
           l.expected_cents AS b_expected, l.received_cents AS b_received,
           l.classification AS b_class
    FROM runs r JOIN billing.pmpm_lines l ON l.run_id = r.base_run_id
),
rates AS (
    SELECT * FROM unnest(CAST(:tiers AS text[]), CAST(:rates AS bigint[])) AS x(tier, rate)
),
codes AS (
    SELECT * FROM unnest(
        CAST(:c_period AS date[]), CAST(:c_code AS text[]), CAST(:c_min AS int[]),
        CAST(:c_addon AS text[]), CAST(:c_step AS int[]), CAST(:c_cap AS int[]),
        CAST(:c_allowed AS bigint[]), CAST(:c_charge AS bigint[]),
        CAST(:c_addon_allowed AS bigint[]), CAST(:c_addon_charge AS bigint[])
    ) AS c(period, code, min_minutes, addon_code, step, cap, allowed, charge, addon_allowed,
           addon_charge)
),
j AS (
    SELECT period, member_id, mm.patient_id, mm.patient_ref, mm.tier, mm.rate,
           COALESCE(mm.enrolled_days, 0) AS enrolled_days, mm.expected AS mm_expected,
           COALESCE(mm.recorded_late, false) AS recorded_late,
           mm.patient_id IS NOT NULL AS on_roster,
           COALESCE(a.minutes, 0) AS minutes, COALESCE(a.interventions, 0) AS interventions,
           COALESCE(pay.received, 0) AS received,
           COALESCE(pay.positive_payments, 0) AS positive_payments,
           COALESCE(pay.payment_count, 0) AS payment_count,
           COALESCE(pay.recouped_cents, 0) AS recouped_cents, pay.named_tier,
           __BASE_COLUMNS__
    FROM mm
    FULL JOIN pay USING (period, member_id)
    __BASE_JOIN__
    LEFT JOIN act a ON a.act_ref = mm.patient_ref AND a.act_period = mm.period
),
k AS (
    SELECT j.*, r.run_id, r.base_run_id,
           r.dim,
           (CAST(:min_minutes AS int) IS NULL OR j.minutes >= CAST(:min_minutes AS int))
             AND (CAST(:min_interventions AS int) IS NULL
                  OR j.interventions >= CAST(:min_interventions AS int)) AS requirement_met,
           mc.code, mc.addon_code, mc.allowed, mc.charge, mc.addon_allowed, mc.addon_charge,
           CASE WHEN mc.addon_code IS NOT NULL AND mc.step > 0
                THEN LEAST((j.minutes - mc.min_minutes) / mc.step,
                           COALESCE(mc.cap, 2147483647))
                ELSE 0 END AS addon_units
    FROM j JOIN runs r ON r.period = j.period
    __CODES_JOIN__
),
f AS (
    SELECT k.*,
           CASE WHEN NOT on_roster THEN NULL
                WHEN CAST(:mode AS text) = 'monthly_claim'
                    THEN requirement_met AND code IS NOT NULL
                WHEN CAST(:has_requirement AS boolean) THEN requirement_met
                ELSE NULL END AS activity_met,
           CASE WHEN NOT on_roster THEN 0
                WHEN CAST(:mode AS text) = 'monthly_claim'
                    THEN CASE WHEN requirement_met AND code IS NOT NULL
                              THEN COALESCE(allowed, 0)
                                   + addon_units * COALESCE(addon_allowed, 0)
                              ELSE 0 END
                ELSE COALESCE(mm_expected, 0) END AS expected,
           CASE WHEN on_roster AND CAST(:mode AS text) = 'monthly_claim'
                     AND requirement_met AND code IS NOT NULL
                THEN COALESCE(charge, 0) + addon_units * COALESCE(addon_charge, 0)
                ELSE 0 END AS charge_cents,
           recouped_cents < 0 AS recouped,
           on_roster AND CAST(:mode AS text) = 'monthly_claim' AND requirement_met
               AND code IS NOT NULL AS billable,
           CASE WHEN base_run_id IS NULL THEN NULL ELSE COALESCE(b_on_roster, false) END
               AS prior_on_roster
    FROM k
),
g AS (
    SELECT f.*,
           COALESCE(named_tier,
                    CASE WHEN on_roster AND CAST(:mode AS text) = 'capitation'
                              AND received > 0 AND received <> expected
                              AND mm_expected = rate
                         THEN (SELECT min(x.tier) FROM rates x
                               WHERE x.rate = f.received AND x.tier IS DISTINCT FROM f.tier)
                    END) AS paid_tier
    FROM f
),
h AS (
    SELECT g.*, __CLASSIFY__ AS classification
    FROM g
),
l AS (
    SELECT run_id, dim, member_id, patient_id, patient_ref, on_roster, tier, rate AS rate_cents,
       enrolled_days, expected AS expected_cents, recorded_late, minutes, interventions,
       activity_met,
       CASE WHEN billable THEN code END AS monthly_code,
       CASE WHEN billable AND addon_units > 0 THEN addon_code END AS addon_code,
       CASE WHEN billable THEN addon_units ELSE 0 END AS addon_units,
       charge_cents, received AS received_cents, payment_count, recouped_cents, paid_tier,
       classification,
       b_class AS prior_classification, b_expected AS prior_expected_cents,
       b_received AS prior_received_cents,
       CASE WHEN base_run_id IS NULL THEN NULL
            WHEN b_present IS NULL THEN 'new'
            WHEN b_class = classification AND b_expected = expected AND b_received = received
                THEN 'same'
            ELSE 'changed' END AS change
    FROM h
),
ins AS (
INSERT INTO billing.pmpm_line_chunks (__CHUNK_COLUMNS__)
SELECT run_id, CAST((hashtext(member_id) & 2147483647) % CAST(:buckets AS int) AS smallint)
           AS bucket,
       CAST(count(*) AS int) AS lines, CAST(max(dim) AS smallint) AS days_in_month,
       -- The hash covers each line's result (not its comparison with the closed run), so two
       -- runs with equal hashes reconciled to the same lines.
       -- (The flag is inside the aggregate: an aggregate under a CASE is computed for every
       -- row whatever the CASE decides.)
       sum(CASE WHEN CAST(:with_hash AS boolean)
                THEN hash_record_extended(ROW(member_id, patient_id, patient_ref, on_roster,
                     tier, rate_cents, enrolled_days, dim, expected_cents, recorded_late,
                     minutes, interventions, activity_met, monthly_code, addon_code,
                     addon_units, charge_cents, received_cents, payment_count, recouped_cents,
                     paid_tier, classification, received_cents - expected_cents), 0)
           END) AS hash_sum,
       CAST(:owner_xid AS bigint) AS owner_xid,
       __ARRAYS__
FROM l
GROUP BY 1, 2
RETURNING run_id, hash_sum, classification, on_roster, expected_cents, received_cents,
          prior_expected_cents, prior_received_cents, change
),
__SUMMARY__
"""

# The SQL type of each array's elements.
_SQL_TYPES = {
    "member_id": "text",
    "patient_id": "uuid",
    "patient_ref": "text",
    "on_roster": "boolean",
    "tier": "text",
    "rate_cents": "bigint",
    "enrolled_days": "smallint",
    "expected_cents": "bigint",
    "recorded_late": "boolean",
    "minutes": "int",
    "interventions": "int",
    "activity_met": "boolean",
    "monthly_code": "text",
    "addon_code": "text",
    "addon_units": "int",
    "charge_cents": "bigint",
    "received_cents": "bigint",
    "payment_count": "int",
    "recouped_cents": "bigint",
    "paid_tier": "text",
    "classification": "text",
    "prior_classification": "text",
    "prior_expected_cents": "bigint",
    "prior_received_cents": "bigint",
    "change": "text",
}
if tuple(_SQL_TYPES) != LINE_ARRAY_NAMES:  # pragma: no cover - a programming error
    raise RuntimeError("_SQL_TYPES must list LINE_ARRAY_NAMES in order")
#: Columns of billing.pmpm_line_chunks in the order the statement's SELECT yields them.
CHUNK_COLUMNS = (
    "run_id",
    "bucket",
    "lines",
    "days_in_month",
    "hash_sum",
    "owner_xid",
    *LINE_ARRAY_NAMES,
)
_ARRAYS = ",\n       ".join(
    f"array_agg(CAST({name} AS {kind})) AS {name}" for name, kind in _SQL_TYPES.items()
)

# Each run's summary and lines hash from its chunks (`__SOURCE__`: the chunks just inserted, or
# the table filtered to the runs); the tail of the statement.
_SUMMARY_TAIL = """per_class AS (
    SELECT c.run_id, u.classification, count(*) AS n,
           count(*) FILTER (WHERE u.on_roster) AS on_roster_n,
           sum(u.expected) AS exp, sum(u.received) AS rec, sum(u.received - u.expected) AS var,
           count(*) FILTER (WHERE u.received <> u.expected) AS var_n,
           COALESCE(sum(u.expected - COALESCE(u.p_exp, 0)) FILTER (WHERE u.change IS NOT NULL),
                    0) AS dexp,
           COALESCE(sum(u.received - COALESCE(u.p_rec, 0)) FILTER (WHERE u.change IS NOT NULL),
                    0) AS drec,
           count(*) FILTER (WHERE u.change IN ('new', 'changed')) AS changed
    FROM ins c
    CROSS JOIN LATERAL unnest(c.classification, c.on_roster, c.expected_cents, c.received_cents,
                              c.prior_expected_cents, c.prior_received_cents, c.change)
        AS u(classification, on_roster, expected, received, p_exp, p_rec, change)
    GROUP BY c.run_id, u.classification
),
hashes AS (
    SELECT run_id, sum(hash_sum) AS hs FROM ins GROUP BY run_id
)
SELECT CAST(s.run_id AS text) AS run_id, CAST(s.summary AS text) AS summary,
       md5(h.hs::text) AS lines_hash
FROM (
    SELECT run_id, jsonb_build_object(
        'lines', sum(n), 'members_on_roster', sum(on_roster_n),
        'expected_cents', sum(exp), 'received_cents', sum(rec), 'variance_cents', sum(var),
        'variance_lines', sum(var_n),
        'expected_adjustment_cents', sum(dexp), 'received_adjustment_cents', sum(drec),
        'changed_lines', sum(changed),
        'by_classification', jsonb_object_agg(classification, jsonb_build_object(
            'lines', n, 'expected_cents', exp, 'received_cents', rec, 'variance_cents', var))
    ) AS summary
    FROM per_class GROUP BY run_id
) s
JOIN hashes h ON h.run_id = s.run_id"""

# Runs without lines keep the empty summary they were created with.
SET_SUMMARIES_SQL = """
UPDATE billing.pmpm_runs r SET summary = CAST(u.summary AS jsonb), lines_hash = u.lines_hash
FROM unnest(CAST(:ids AS uuid[]), CAST(:summaries AS text[]), CAST(:hashes AS text[]))
    AS u(run_id, summary, lines_hash)
WHERE r.id = u.run_id
"""

# Lines of runs that never committed (a parallel run's connections commit their lines before
# the run's transaction commits the run; see `pmpm_reconcile.reconcile`): no run row, and the run's
# transaction (owner_xid) is no longer in progress. Nothing reads them; this removes them.
SWEEP_ORPHAN_LINES_SQL = """
DELETE FROM billing.pmpm_line_chunks c
WHERE NOT EXISTS (SELECT 1 FROM billing.pmpm_runs r WHERE r.id = c.run_id)
  AND pg_xact_status(CAST(CAST(c.owner_xid AS text) AS xid8)) IS DISTINCT FROM 'in progress'
"""


# `__MEMBER_MONTHS__` (the port's SELECT) and `__CODES_JOIN__` are filled by `reconcile_sql`.
RECONCILE_SQL = (
    _RECONCILE_TEMPLATE.replace("__MINUTES__", _MINUTES)
    .replace("__CLASSIFY__", CLASSIFY_SQL)
    .replace("__ARRAYS__", _ARRAYS)
    .replace("__CHUNK_COLUMNS__", ", ".join(CHUNK_COLUMNS))
    .replace("__SUMMARY__", _SUMMARY_TAIL)
)


# The highest monthly code each member's minutes reach (contracts that bill by claim).
_CODES_LATERAL = """LEFT JOIN LATERAL (
        SELECT * FROM codes c
        WHERE CAST(:mode AS text) = 'monthly_claim' AND j.on_roster
          AND c.period = j.period AND c.min_minutes <= j.minutes
        ORDER BY c.min_minutes DESC LIMIT 1
    ) mc ON true"""
# Capitation: no codes (the lateral would find none, after a rescan per line).
_CODES_NONE = "LEFT JOIN codes mc ON false"


# Adjustment runs compare with the closed run's lines; regular runs have none to join (a full
# join with an empty side still cost a sort of every line).
_BASE_COLUMNS = "base.b_present, base.b_on_roster, base.b_expected, base.b_received, base.b_class"
_BASE_JOIN = "FULL JOIN base USING (period, member_id)"
_NO_BASE_COLUMNS = (
    "NULL::boolean AS b_present, NULL::boolean AS b_on_roster, NULL::bigint AS b_expected, "
    "NULL::bigint AS b_received, NULL::text AS b_class"
)


def reconcile_sql(member_months: str, *, monthly_claim: bool, with_base: bool = True) -> str:
    """The statement that writes the runs' line chunks and returns each run's summary (run_id,
    summary as JSON text, lines_hash), with coverage's member-months SELECT embedded as the
    CTE `mm`; `with_base` when any of the runs is an adjustment run (compared with a closed
    run)."""
    return (
        RECONCILE_SQL.replace("__MEMBER_MONTHS__", member_months)
        .replace("__CODES_JOIN__", _CODES_LATERAL if monthly_claim else _CODES_NONE)
        .replace("__BASE_COLUMNS__", _BASE_COLUMNS if with_base else _NO_BASE_COLUMNS)
        .replace("__BASE_JOIN__", _BASE_JOIN if with_base else "")
    )
