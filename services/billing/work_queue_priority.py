"""Work item priority: payer/CARC overturn rates and the daily set-based priority refresh.

Priority uses the documented formula in services/billing/domain/work_items.py (dollars on a
log scale + deadline urgency, times the payer/CARC overturn likelihood); `refresh_priorities`
recomputes it daily for every unresolved item, since urgency grows as the deadline nears.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.work_items import (
    DOLLAR_WEIGHT,
    NO_DEADLINE_DAYS,
    URGENCY_HALF_LIFE,
    URGENCY_WEIGHT,
    priority,
)

__all__ = [
    "OVERTURN_MIN_DECIDED",
    "OVERTURN_WINDOW_DAYS",
    "apply_overturn_rates",
    "overturn_rate",
    "overturn_rates",
    "refresh_priorities",
]

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
