"""Properties: the SQL classification equals the pure rules; the SQL ledger equals coverage's
reference member_months on generated rosters; a run's expected total is the sum of its lines."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.billing.domain.pmpm import LineFacts, classify
from services.billing.pmpm_sql import CLASSIFY_SQL
from services.coverage.domain.contracts import ProrationRule
from shared.uow import SharedConnectionDatabase
from tests.integration.pmpm.helpers import World, pmpm_terms

facts = st.builds(
    LineFacts,
    on_roster=st.booleans(),
    expected=st.integers(0, 5000),
    received=st.integers(-3000, 8000),
    positive_payments=st.integers(0, 3),
    recouped=st.booleans(),
    tier=st.sampled_from([None, "std", "high"]),
    paid_tier=st.sampled_from([None, "std", "high"]),
    activity_met=st.sampled_from([None, True, False]),
    prior_on_roster=st.sampled_from([None, True, False]),
    recorded_late=st.booleans(),
)

SLOW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SLOW
@given(batch=st.lists(facts, min_size=1, max_size=40))
async def test_sql_case_equals_pure_classify(
    db: SharedConnectionDatabase, batch: list[LineFacts]
) -> None:
    cols = [
        "on_roster",
        "expected",
        "received",
        "positive_payments",
        "recouped",
        "tier",
        "paid_tier",
        "activity_met",
        "prior_on_roster",
        "recorded_late",
    ]
    params: dict[str, object] = {}
    rows = []
    for i, f in enumerate(batch):
        names = []
        for c in cols:
            params[f"{c}{i}"] = getattr(f, c)
            cast = {
                "tier": "text",
                "paid_tier": "text",
                "expected": "bigint",
                "received": "bigint",
                "positive_payments": "int",
            }.get(c, "boolean")
            names.append(f"CAST(:{c}{i} AS {cast})")
        rows.append(f"({i}, {', '.join(names)})")
    sql = (
        f"SELECT i, {CLASSIFY_SQL} FROM (VALUES {', '.join(rows)}) "  # noqa: S608
        f"AS f(i, {', '.join(cols)}) ORDER BY i"
    )
    got = [r[1] for r in (await db.conn.execute(text(sql), params)).all()]
    assert got == [classify(f).value for f in batch]


span_st = st.tuples(
    st.integers(0, 11),  # member
    st.integers(-40, 60),  # start offset from April 1
    st.one_of(st.none(), st.integers(0, 70)),  # length
    st.sampled_from([None, "std", "high", "odd"]),
    st.sampled_from(["primary", "secondary"]),
    st.one_of(st.none(), st.integers(0, 40)),  # opt-out offset
)


@SLOW
@given(
    rule=st.sampled_from(list(ProrationRule)),
    spans=st.lists(span_st, min_size=1, max_size=25),
    pays=st.lists(st.tuples(st.integers(0, 14), st.integers(-2000, 5000)), max_size=12),
)
async def test_ledger_matches_reference_and_totals_add_up(
    db: SharedConnectionDatabase,
    rule: ProrationRule,
    spans: list[tuple[int, int, int | None, str | None, str, int | None]],
    pays: list[tuple[int, int]],
) -> None:
    from services.coverage.domain.member_months import member_months
    from services.coverage.member_months_sql import pmpm_contract
    from services.coverage.repository import span_versions_of

    tenant = f"t-{uuid.uuid4().hex[:10]}"
    async with db.transaction() as (conn, _trans):
        w = await World(conn, tenant).setup(
            pmpm_terms(proration=rule, rates={"std": 2500, "high": 4000, "odd": 1001})
        )
        april = date(2026, 4, 1)
        for n, (member, start, length, tier, prio, opt) in enumerate(spans):
            first = april + timedelta(days=start)
            await w.span(
                f"M{member}",
                first,
                None if length is None else first + timedelta(days=length),
                tier=tier,
                priority=prio,
                span_id=f"s{n}",
                opt_out=None if opt is None else april + timedelta(days=opt),
            )
        if pays:
            body = "".join(f"M{m},2026-04,{c / 100:.2f}\n" for m, c in pays)
            await w.pay_csv("member_id,month,amount\n" + body)
        run = await w.run(april)
        lines = await w.lines(run.run_id)
        summary = (await w.run_row(run.run_id)).summary
        found = await pmpm_contract(conn, tenant, w.contract_id)
        assert found is not None
        assert found.versions[0].terms.pmpm is not None
        history = []
        for pid in set(w.patients.values()):
            history += [sv.span for sv in await span_versions_of(conn, tenant, pid)]
        ref = member_months(history, w.contract_id, found.versions[0].terms.pmpm, 2026, 4)
        await _trans.rollback()
    assert {m.member_id: (m.enrolled_days, m.expected_cents, m.tier) for m in ref} == {
        k: (v.enrolled_days, v.expected_cents, v.tier) for k, v in lines.items() if v.on_roster
    }
    assert summary.get("expected_cents", 0) == sum(v.expected_cents for v in lines.values())
    assert summary.get("received_cents", 0) == sum(v.received_cents for v in lines.values())
    assert summary.get("variance_cents", 0) == sum(v.variance_cents for v in lines.values())
    assert summary.get("lines", 0) == len(lines)
