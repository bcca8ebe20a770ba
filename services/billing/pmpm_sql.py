"""The reconciliation statement: one INSERT ... SELECT writes every line of every run in a batch
(one run per month of one contract version), classifying all members at once.

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
           base.b_present, base.b_on_roster, base.b_expected, base.b_received, base.b_class
    FROM mm
    FULL JOIN pay USING (period, member_id)
    FULL JOIN base USING (period, member_id)
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
ins AS (
    INSERT INTO billing.pmpm_lines (
        run_id, member_id, patient_id, patient_ref, on_roster, tier, rate_cents,
        enrolled_days, days_in_month, expected_cents, recorded_late, minutes, interventions,
        activity_met, monthly_code, addon_code, addon_units, charge_cents, received_cents,
        payment_count, recouped_cents, paid_tier, classification, variance_cents,
        prior_classification, prior_expected_cents, prior_received_cents, change
    )
    SELECT run_id, member_id, patient_id, patient_ref, on_roster, tier, rate, enrolled_days, dim,
       expected, recorded_late, minutes, interventions, activity_met,
       CASE WHEN billable THEN code END,
       CASE WHEN billable AND addon_units > 0 THEN addon_code END,
       CASE WHEN billable THEN addon_units ELSE 0 END,
       charge_cents, received, payment_count, recouped_cents, paid_tier, classification,
       received - expected,
       b_class, b_expected, b_received,
       CASE WHEN base_run_id IS NULL THEN NULL
            WHEN b_present IS NULL THEN 'new'
            WHEN b_class = classification AND b_expected = expected AND b_received = received
                THEN 'same'
            ELSE 'changed' END
    FROM h
    RETURNING run_id, on_roster, classification, expected_cents, received_cents,
              variance_cents, prior_expected_cents, prior_received_cents, change,
              CASE WHEN CAST(:with_hash AS boolean)
                   THEN hash_record_extended(ROW(member_id, patient_id, patient_ref, on_roster,
                        tier, rate_cents, enrolled_days, days_in_month, expected_cents,
                        recorded_late, minutes, interventions, activity_met, monthly_code,
                        addon_code, addon_units, charge_cents, received_cents, payment_count,
                        recouped_cents, paid_tier, classification, variance_cents), 0)
              END AS hv
),
per_class AS (
    SELECT run_id, classification, count(*) AS n,
           count(*) FILTER (WHERE on_roster) AS on_roster_n,
           sum(expected_cents) AS exp, sum(received_cents) AS rec, sum(variance_cents) AS var,
           count(*) FILTER (WHERE variance_cents <> 0) AS var_n,
           COALESCE(sum(expected_cents - COALESCE(prior_expected_cents, 0))
                    FILTER (WHERE change IS NOT NULL), 0) AS dexp,
           COALESCE(sum(received_cents - COALESCE(prior_received_cents, 0))
                    FILTER (WHERE change IS NOT NULL), 0) AS drec,
           count(*) FILTER (WHERE change IN ('new', 'changed')) AS changed,
           sum(hv) AS hv
    FROM ins GROUP BY run_id, classification
)
UPDATE billing.pmpm_runs r SET summary = s.summary, lines_hash = s.h
FROM (
    -- The hash covers each line's result (not its comparison with the closed run), so two
    -- runs with equal hashes reconciled to the same lines.
    SELECT run_id, md5(sum(hv)::text) AS h, jsonb_build_object(
        'lines', sum(n), 'members_on_roster', sum(on_roster_n),
        'expected_cents', sum(exp), 'received_cents', sum(rec), 'variance_cents', sum(var),
        'variance_lines', sum(var_n),
        'expected_adjustment_cents', sum(dexp), 'received_adjustment_cents', sum(drec),
        'changed_lines', sum(changed),
        'by_classification', jsonb_object_agg(classification, jsonb_build_object(
            'lines', n, 'expected_cents', exp, 'received_cents', rec, 'variance_cents', var))
    ) AS summary
    FROM per_class GROUP BY run_id
) s WHERE r.id = s.run_id
"""
# `__MEMBER_MONTHS__` (the port's SELECT) and `__CODES_JOIN__` are filled by `reconcile_sql`.
RECONCILE_SQL = _RECONCILE_TEMPLATE.replace("__MINUTES__", _MINUTES).replace(
    "__CLASSIFY__", CLASSIFY_SQL
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


def reconcile_sql(member_months: str, *, monthly_claim: bool) -> str:
    """The statement with coverage's member-months SELECT embedded as the CTE `mm`."""
    return RECONCILE_SQL.replace("__MEMBER_MONTHS__", member_months).replace(
        "__CODES_JOIN__", _CODES_LATERAL if monthly_claim else _CODES_NONE
    )
