"""PMPM runs against real PostgreSQL: hand-worked ledger per proration rule, every
classification end to end, re-run reproducibility, close + retro change -> adjustment,
variance work items, CSV and 835 payment imports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from services.billing import pmpm, pmpm_close, pmpm_items, pmpm_payments
from services.billing.tables_pmpm import pmpm_payments as payments_table
from services.billing.tables_remittance import work_items
from services.coverage.domain.contracts import (
    ActivityRequirement,
    FeeScheduleEntry,
    MonthlyCode,
    PaymentMode,
    ProrationRule,
)
from shared.errors import Conflict, RuleViolation
from shared.uow import SharedConnectionDatabase
from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.x835 import (
    Address,
    Adjustment,
    ClaimPayment,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    build_835,
)
from tests.integration.pmpm.helpers import COVERAGE, World, pmpm_terms

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
LATE = datetime(2026, 4, 10, tzinfo=UTC)


async def world(db: SharedConnectionDatabase, tenant: str, **terms: Any) -> tuple[World, Any]:
    conn = db.conn
    fees = terms.pop("fees", ())
    w = await World(conn, tenant).setup(pmpm_terms(**terms), fees=fees)
    return w, conn


# ----------------------------------------------------------------------------- proration


async def test_first_of_month_by_hand(db: SharedConnectionDatabase, tenant: str) -> None:
    w, _ = await world(db, tenant, proration=ProrationRule.FIRST_OF_MONTH)
    await w.span("A", date(2026, 3, 1))  # covered on the 1st: whole month
    await w.span("B", date(2026, 3, 2))  # starts on the 2nd: not this month
    await w.span("C", date(2026, 1, 1), date(2026, 2, 28))  # ended before
    await w.span("D", date(2026, 2, 1), date(2026, 3, 1))  # covered on the 1st only: counts
    lines = await w.lines((await w.run(MARCH)).run_id)
    assert {m: (x.on_roster, x.expected_cents) for m, x in lines.items()} == {
        "A": (True, 2500),
        "D": (True, 2500),
    }
    assert lines["D"].enrolled_days == 1
    assert lines["A"].days_in_month == 31


async def test_fifteen_thirty_day_15_vs_16(db: SharedConnectionDatabase, tenant: str) -> None:
    w, _ = await world(db, tenant, proration=ProrationRule.FIFTEEN_THIRTY)
    await w.span("E", date(2026, 3, 15))  # change on the 15th: counts this month
    await w.span("F", date(2026, 3, 16))  # change on the 16th: next month
    await w.span("G", date(2026, 1, 1), date(2026, 3, 14))  # termed on the 15th: not
    await w.span("H", date(2026, 1, 1), date(2026, 3, 15))  # termed on the 16th: counts
    lines = await w.lines((await w.run(MARCH)).run_id)
    assert sorted(lines) == ["E", "H"]
    assert all(x.expected_cents == 2500 for x in lines.values())
    april = await w.lines((await w.run(APRIL)).run_id)
    assert sorted(april) == ["E", "F"]


async def test_daily_by_hand_with_tier_change_and_half_up(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w, _ = await world(
        db,
        tenant,
        proration=ProrationRule.DAILY,
        rates={"std": 2500, "high": 4000, "odd": 1001},
    )
    await w.span("I", date(2026, 4, 11))  # 20 of 30 days: 2500 * 20 / 30 = 1666.67 -> 1667
    await w.span("J", date(2026, 1, 1), date(2026, 4, 10))  # std 10 days
    await w.span("J", date(2026, 4, 11), tier="high")  # high 20 days
    # (2500 * 10 + 4000 * 20) / 30 = 3500 exactly
    await w.span("K", date(2026, 4, 1), date(2026, 4, 15))  # 15/30 of 2500 = 1250
    await w.span("L", date(2026, 4, 16), tier="odd")  # 15/30 of 10.01 = 5.005 -> 5.01 (half up)
    # Overlapping secondary span: counted once, days are a union.
    await w.span("M", date(2026, 4, 1), date(2026, 4, 20))
    await w.span("M", date(2026, 4, 10), date(2026, 4, 25), priority="secondary", tier="high")
    lines = await w.lines((await w.run(APRIL)).run_id)
    got = {m: (x.enrolled_days, x.expected_cents, x.tier) for m, x in lines.items()}
    # M: std days 1-20 (primary wins), high days 21-25: (2500 * 20 + 4000 * 5) / 30 = 2333.33
    assert got == {
        "I": (20, 1667, "std"),
        "J": (30, 3500, "high"),
        "K": (15, 1250, "std"),
        "L": (15, 501, "odd"),
        "M": (25, 2333, "high"),
    }
    await _matches_reference(w, APRIL)


async def _matches_reference(w: World, month: date) -> None:
    """The SQL ledger equals coverage's pure member_months (the reference) for every member."""
    from services.coverage.domain.member_months import member_months
    from services.coverage.member_months_sql import pmpm_contract
    from services.coverage.repository import span_versions_of

    found = await pmpm_contract(w.conn, w.tenant, w.contract_id)
    assert found is not None
    terms = found.versions[0].terms
    spans = []
    for pid in set(w.patients.values()):
        spans += [sv.span for sv in await span_versions_of(w.conn, w.tenant, pid)]
    assert terms.pmpm is not None
    ref = member_months(
        spans, w.contract_id, terms.pmpm, month.year, month.month, exclusions=terms.exclusions
    )
    run = await w.run(month)
    lines = await w.lines(run.run_id)
    assert {m.member_id: (m.enrolled_days, m.expected_cents, m.tier) for m in ref} == {
        k: (v.enrolled_days, v.expected_cents, v.tier) for k, v in lines.items() if v.on_roster
    }


async def test_opt_out_and_exclusions_and_as_known_at(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w, _ = await world(db, tenant, proration=ProrationRule.DAILY)
    await w.span("N", date(2026, 1, 1), opt_out=date(2026, 4, 11))  # 10 days -> 833.33 -> 833
    await w.span("O", date(2026, 1, 1), flags=["PART_D_ELIGIBLE"])  # not excluded here
    # A retro-termination recorded later replaces the first version.
    sid = await w.span("P", date(2026, 1, 1))
    await w.span("P", date(2026, 1, 1), date(2026, 3, 31), span_id=sid, version=2, recorded_at=LATE)
    lines = await w.lines((await w.run(APRIL)).run_id)
    assert {m: x.expected_cents for m, x in lines.items()} == {"N": 833, "O": 2500}
    await _matches_reference(w, APRIL)


# ----------------------------------------------------------------------------- classification


async def test_every_classification_end_to_end(db: SharedConnectionDatabase, tenant: str) -> None:
    w, _ = await world(db, tenant)
    for m in ("P1", "P2", "P3", "P4", "P7"):
        await w.span(m, date(2026, 1, 1))
    await w.span("P5", date(2026, 1, 1), tier="high")
    await w.span("P6", date(2026, 1, 1), recorded_at=LATE)  # told after March ended
    await w.pay_csv(
        "member_id,month,amount\n"
        "P1,2026-03,25.00\n"
        "P2,2026-03,20.00\n"
        "P3,2026-03,30.00\n"
        "P5,2026-03,25.00\n"
        "P6,2026-03,25.00\n"
        "P7,2026-03,25.00\n"
        "X1,2026-03,25.00\n"
        "X2,2026-03,25.00\n"
        "X2,2026-03,-25.00\n"
    )
    await w.pay_csv("member_id,month,amount\nP7,2026-03,25.00\n")  # a second payment
    run = await w.run(MARCH)
    lines = await w.lines(run.run_id)
    got = {m: (x.classification, x.variance_cents) for m, x in lines.items()}
    assert got == {
        "P1": ("paid_as_expected", 0),
        "P2": ("underpaid", -500),
        "P3": ("overpaid", 500),
        "P4": ("missing", -2500),
        "P5": ("wrong_tier", -1500),
        "P6": ("retro_add", 0),
        "P7": ("duplicate", 2500),
        "X1": ("paid_not_on_roster", 2500),
        "X2": ("retro_term", 0),
    }
    assert lines["P5"].paid_tier == "std"
    summary = (await w.run_row(run.run_id)).summary
    assert (
        summary["expected_cents"]
        == sum(x.expected_cents for x in lines.values())
        == 7 * 2500 + 1500
    )
    assert summary["received_cents"] == sum(x.received_cents for x in lines.values())
    assert summary["variance_cents"] == summary["received_cents"] - summary["expected_cents"]
    assert summary["by_classification"]["missing"]["lines"] == 1


async def test_activity_requirement(db: SharedConnectionDatabase, tenant: str) -> None:
    w, _ = await world(
        db, tenant, activity=ActivityRequirement(min_minutes=20, min_interventions=1)
    )
    for m in ("Q1", "Q2", "Q3"):
        await w.span(m, date(2026, 1, 1))
    await w.session("Q1", date(2026, 3, 3), 15, 1)
    await w.session("Q1", date(2026, 3, 20), 10, 0)  # 25 min, 1 intervention: met
    await w.session("Q2", date(2026, 3, 3), 30, 0)  # no intervention: not met
    await w.session("Q3", date(2026, 2, 27), 60, 2)  # February does not count for March
    await w.pay_csv("member_id,month,amount\nQ1,2026-03,25.00\nQ2,2026-03,25.00\n")
    lines = await w.lines((await w.run(MARCH)).run_id)
    assert {
        m: (x.minutes, x.interventions, x.activity_met, x.classification) for m, x in lines.items()
    } == {
        "Q1": (25, 1, True, "paid_as_expected"),
        "Q2": (30, 0, False, "activity_not_met"),
        "Q3": (0, 0, False, "activity_not_met"),
    }


async def test_monthly_claim_codes(db: SharedConnectionDatabase, tenant: str) -> None:
    fees = (
        FeeScheduleEntry("99490", None, 6000, 5000, date(2025, 1, 1)),
        FeeScheduleEntry("99439", None, 5000, 4000, date(2025, 1, 1)),
    )
    w, _ = await world(
        db,
        tenant,
        mode=PaymentMode.MONTHLY_CLAIM,
        monthly_codes=(MonthlyCode("99490", 20, "99439", 20, 2),),
        fees=fees,
    )
    for m in ("R1", "R2", "R3"):
        await w.span(m, date(2026, 1, 1))
    await w.session("R1", date(2026, 3, 3), 45)  # 99490 + 1 x 99439 = 50.00 + 40.00
    await w.session("R2", date(2026, 3, 3), 100)  # 99490 + 2 (capped; 4 earned) = 130.00
    await w.session("R3", date(2026, 3, 3), 19)  # below the threshold: nothing billable
    await w.pay_csv("member_id,month,amount\nR1,2026-03,90.00\nR2,2026-03,50.00\n")
    lines = await w.lines((await w.run(MARCH)).run_id)
    got = {
        m: (
            x.monthly_code,
            x.addon_code,
            x.addon_units,
            x.charge_cents,
            x.expected_cents,
            x.classification,
        )
        for m, x in lines.items()
    }
    assert got == {
        "R1": ("99490", "99439", 1, 11000, 9000, "paid_as_expected"),
        "R2": ("99490", "99439", 2, 16000, 13000, "underpaid"),
        "R3": (None, None, 0, 0, 0, "activity_not_met"),
    }


# ----------------------------------------------------------------------------- versions


async def test_rerun_with_no_new_data_is_identical(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w, _ = await world(db, tenant, proration=ProrationRule.DAILY)
    await w.span("A", date(2026, 3, 5))
    await w.span("B", date(2026, 1, 1), tier="high")
    await w.pay_csv("member_id,month,amount\nA,2026-03,20.00\nZ,2026-03,1.00\n")
    first, second = await w.run(MARCH), await w.run(MARCH)
    assert (first.run_no, second.run_no) == (1, 2)

    def strip(rows: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r._mapping.items() if k != "run_id"} for r in rows.values()]

    assert strip(await w.lines(first.run_id)) == strip(await w.lines(second.run_id))
    r1, r2 = await w.run_row(first.run_id), await w.run_row(second.run_id)
    assert r1.lines_hash == r2.lines_hash
    assert r1.summary == r2.summary
    # New data makes a different result; the earlier runs are kept as they were.
    await w.pay_csv("member_id,month,amount\nB,2026-03,40.00\n")
    third = await w.run(MARCH)
    assert (await w.run_row(third.run_id)).lines_hash != r1.lines_hash
    assert (await w.run_row(first.run_id)).lines_hash == r1.lines_hash


async def test_close_then_retro_change_is_an_adjustment(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w, conn = await world(db, tenant)
    sid = await w.span("A", date(2026, 1, 1))
    await w.span("B", date(2026, 1, 1))
    await w.pay_csv("member_id,month,amount\nA,2026-03,25.00\nB,2026-03,25.00\n")
    today = date(2026, 4, 5)
    closed = await w.run(MARCH, today=today)
    await pmpm.close_run(conn, tenant_id=tenant, run_id=closed.run_id, actor="test")
    assert (await w.run_row(closed.run_id)).status == "closed"
    with pytest.raises(Conflict):
        await pmpm.close_run(conn, tenant_id=tenant, run_id=closed.run_id, actor="test")
    # Later: A was retro-terminated at the end of February (and recouped); C is a retro add.
    later = datetime(2026, 4, 20, tzinfo=UTC)
    await w.span(
        "A", date(2026, 1, 1), date(2026, 2, 28), span_id=sid, version=2, recorded_at=later
    )
    await w.span("C", date(2026, 2, 1), recorded_at=later)
    await w.pay_csv("member_id,month,amount\nA,2026-03,-25.00\nC,2026-03,25.00\n")
    adj = await w.run(MARCH, today=date(2026, 5, 3))
    assert (adj.kind, adj.run_no) == ("adjustment", 2)
    lines = await w.lines(adj.run_id)
    got = {
        m: (
            x.classification,
            x.expected_cents,
            x.prior_expected_cents,
            x.received_cents,
            x.prior_received_cents,
            x.change,
        )
        for m, x in lines.items()
    }
    assert got == {
        "A": ("retro_term", 0, 2500, 0, 2500, "changed"),
        "B": ("paid_as_expected", 2500, 2500, 2500, 2500, "same"),
        "C": ("retro_add", 2500, None, 2500, None, "new"),
    }
    summary = (await w.run_row(adj.run_id)).summary
    assert summary["expected_adjustment_cents"] == 0  # -25.00 for A, +25.00 for C
    assert summary["received_adjustment_cents"] == 0
    assert summary["changed_lines"] == 2
    # The closed run is untouched; outside the retro window the month cannot be re-run.
    assert (await w.lines(closed.run_id))["A"].classification == "paid_as_expected"
    with pytest.raises(Conflict):
        await w.run(MARCH, today=date(2026, 10, 1))


async def test_variances_become_work_items_once(db: SharedConnectionDatabase, tenant: str) -> None:
    w, conn = await world(db, tenant)
    await w.span("A", date(2026, 1, 1))
    await w.span("B", date(2026, 1, 1))
    await w.pay_csv("member_id,month,amount\nA,2026-03,20.00\nB,2026-03,25.00\nX,2026-03,5.00\n")
    run = await w.run(MARCH)
    n = await pmpm_items.open_variance_items(conn, tenant_id=tenant, run_id=run.run_id, actor="t")
    assert n == 2
    items = (
        await conn.execute(
            select(work_items)
            .where(work_items.c.tenant_id == tenant)
            .order_by(work_items.c.amount_cents)
        )
    ).all()
    assert [(i.category, i.source, i.amount_cents) for i in items] == [
        ("pmpm_variance", "pmpm", 500),
        ("pmpm_variance", "pmpm", 500),
    ]
    assert {i.reasons[0]["code"] for i in items} == {"underpaid", "paid_not_on_roster"}
    assert {i.reasons[0]["member_id"] for i in items} == {"A", "X"}
    # A re-run finds the same items: no duplicates in the queue.
    again = await w.run(MARCH)
    assert (
        await pmpm_items.open_variance_items(conn, tenant_id=tenant, run_id=again.run_id, actor="t")
        == 2
    )
    lines1, lines2 = await w.lines(run.run_id), await w.lines(again.run_id)
    assert lines1["A"].work_item_id == lines2["A"].work_item_id is not None
    count = (
        await conn.execute(select(work_items.c.id).where(work_items.c.tenant_id == tenant))
    ).all()
    assert len(count) == 2


async def test_runs_refuse_future_months_and_non_pmpm(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w, _ = await world(db, tenant)
    with pytest.raises(RuleViolation):
        await w.run(date(2027, 1, 1), today=date(2026, 12, 1))


# ----------------------------------------------------------------------------- payments


async def test_csv_with_bad_rows_applies_nothing(db: SharedConnectionDatabase, tenant: str) -> None:
    w, conn = await world(db, tenant)
    with pytest.raises(RuleViolation) as err:
        await w.pay_csv("member_id,month,amount\nA,2026-03,25.00\nB,2026-13,25.00\n,2026-03,x\n")
    fields = [p.field for p in err.value.errors]
    assert fields == ["rows[3].month", "rows[4].member_id", "rows[4].amount"]
    rows = (
        await conn.execute(select(payments_table).where(payments_table.c.tenant_id == tenant))
    ).all()
    assert rows == []
    first = await w.pay_csv("member_id,month,amount\nA,2026-03,25.00\n")
    again = await w.pay_csv("member_id,month,amount\nA,2026-03,25.00\n")
    assert (first.duplicate, again.duplicate, again.import_id) == (False, True, first.import_id)


def _835(plb: list[ProviderAdjustment], claims: list[ClaimPayment]) -> str:
    net = sum(c.paid for c in claims) - sum(p.amount for p in plb)
    remit = Remittance(
        handling_code="I",
        paid_amount=abs(net),
        credit_debit="D" if net < 0 else "C",
        payment_method="ACH",
        payment_date=date(2026, 4, 2),
        trace_number="EFT0001",
        trace_originator_id="1512345678",
        payer_name="ACME HEALTH PLAN",
        payee_name="ACME PHARMACY",
        payee_id_qualifier="XX",
        payee_id="1234567893",
        payer_address=Address("1 PAYER WAY", "PAYERTOWN", "NY", "12345"),
        payer_contact_name="PAYER SUPPORT",
        payer_contact_phone="5555550000",
        claims=claims,
        plb=plb,
    )
    return build_835(
        [remit],
        parties=Parties("ZZ", "PAYER01", "ZZ", "SUBMIT001"),
        control=ControlNumbers(7, 7, 1),
        created_at=datetime(2026, 4, 2, 9, 0),
    )


async def test_835_plb_ct_and_monthly_code_lines(db: SharedConnectionDatabase, tenant: str) -> None:
    w, conn = await world(db, tenant, monthly_codes=(MonthlyCode("99490", 20),))
    for m in ("A", "B", "C"):
        await w.span(m, date(2026, 1, 1))
    npi = "1234567893"
    claim = ClaimPayment(
        "PCN1",
        "1",
        5000,
        2500,
        member_id="C",
        lines=[ServiceLine("99490", 5000, 2500, service_date=date(2026, 3, 31), adjustments=[])],
    )
    claim.lines[0].adjustments.append(Adjustment("CO", "45", 2500))
    text = _835(
        [
            ProviderAdjustment(npi, date(2026, 3, 31), "CT", -2500, "A"),
            ProviderAdjustment(npi, date(2026, 3, 31), "CT", -2000, "B"),
            ProviderAdjustment(npi, date(2026, 3, 31), "WO", 100, "ICN9"),
        ],
        [claim],
    )
    res = await pmpm_payments.import_835(
        conn,
        tenant_id=tenant,
        contract_id=w.contract_id,
        content=text,
        actor="t",
        coverage=COVERAGE,
    )
    assert (res.rows, res.total_cents) == (3, 7000)
    lines = await w.lines((await w.run(MARCH)).run_id)
    assert {m: (x.received_cents, x.classification) for m, x in lines.items()} == {
        "A": (2500, "paid_as_expected"),
        "B": (2000, "underpaid"),
        "C": (2500, "paid_as_expected"),
    }


async def test_close_day_runs_closes_and_adjusts_only_on_change(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w, conn = await world(db, tenant)
    sid = await w.span("A", date(2026, 1, 1))

    async def close(today: date) -> list[pmpm.RunRef]:
        return await pmpm_close.close_contract_month(
            conn,
            tenant_id=tenant,
            contract_id=w.contract_id,
            today=today,
            actor="cron",
            coverage=COVERAGE,
        )

    (march,) = await close(date(2026, 4, 5))
    assert (march.period, march.kind) == (MARCH, "regular")
    assert (await w.run_row(march.run_id)).status == "closed"
    # April's close: April is closed; March is unchanged, so no new March run is kept.
    (april,) = await close(date(2026, 5, 5))
    assert april.period == APRIL
    # A retro change to March shows up at the next close as an adjustment run.
    later = datetime(2026, 5, 20, tzinfo=UTC)
    await w.span(
        "A", date(2026, 1, 1), date(2026, 2, 28), span_id=sid, version=2, recorded_at=later
    )
    refs = await close(date(2026, 6, 5))
    assert sorted((r.period, r.kind) for r in refs) == [
        (MARCH, "adjustment"),
        (APRIL, "adjustment"),
        (date(2026, 5, 1), "regular"),
    ]
