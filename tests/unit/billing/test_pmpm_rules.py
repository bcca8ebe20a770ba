"""PMPM rules: one hand-worked example per classification, month helpers, CSV payments."""

from __future__ import annotations

from datetime import date

import pytest

from services.billing.domain.pmpm import (
    Classification as C,
)
from services.billing.domain.pmpm import (
    LineFacts,
    add_months,
    classify,
    months_between,
    needs_work,
    parse_month,
    parse_payment_csv,
    variance,
    within_retro_window,
)


def on(expected: int = 2500, received: int = 2500, **kw: object) -> LineFacts:
    base: dict[str, object] = {
        "on_roster": True,
        "expected": expected,
        "received": received,
        "positive_payments": 1 if received > 0 else 0,
        "recouped": False,
        "tier": "std",
    }
    base.update(kw)
    return LineFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "want", "var"),
    [
        (on(), C.PAID_AS_EXPECTED, 0),
        (on(received=2000), C.UNDERPAID, -500),
        (on(received=3000), C.OVERPAID, 500),
        (on(received=0), C.MISSING, -2500),
        (
            LineFacts(False, 0, 2500, 1, False),
            C.PAID_NOT_ON_ROSTER,
            2500,
        ),
        (on(received=4000, paid_tier="high"), C.WRONG_TIER, 1500),
        (on(recorded_late=True), C.RETRO_ADD, 0),
        (on(prior_on_roster=False, received=0), C.RETRO_ADD, -2500),
        (LineFacts(False, 0, 0, 1, True), C.RETRO_TERM, 0),
        (LineFacts(False, 0, 2500, 1, False, prior_on_roster=True), C.RETRO_TERM, 2500),
        (on(received=5000, positive_payments=2), C.DUPLICATE, 2500),
        (on(activity_met=False), C.ACTIVITY_NOT_MET, 0),
    ],
)
def test_each_classification_by_hand(facts: LineFacts, want: C, var: int) -> None:
    assert classify(facts) is want
    assert variance(facts) == var


def test_precedence() -> None:
    # Short activity outranks every money problem; a named tier equal to ours is no variance.
    assert classify(on(received=0, activity_met=False)) is C.ACTIVITY_NOT_MET
    assert classify(on(paid_tier="std", received=2000)) is C.UNDERPAID
    # Two payments that add up to the expected amount are not a duplicate.
    assert classify(on(received=2500, positive_payments=2)) is C.PAID_AS_EXPECTED
    assert needs_work("activity_not_met", 0)
    assert needs_work("missing", -1)
    assert not needs_work("retro_add", 0)


def test_months() -> None:
    assert parse_month("2026-03") == date(2026, 3, 1) == parse_month("2026-03-01")
    for bad in ("2026-3", "2026-13", "March", "2026-03-02"):
        with pytest.raises(ValueError):
            parse_month(bad)
    assert add_months(date(2026, 11, 1), 3) == date(2027, 2, 1)
    assert add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert months_between(date(2026, 1, 1), date(2026, 7, 31)) == 6
    assert within_retro_window(date(2026, 1, 1), date(2026, 7, 15), 6)
    assert not within_retro_window(date(2026, 1, 1), date(2026, 8, 1), 6)


def test_csv_payments_parse_and_remap() -> None:
    rows, problems = parse_payment_csv(
        "Member,Period,Paid,Tier\nM1,2026-03,25.00,std\n\nM2,2026-03,-10.5,\n",
        {"member_id": "Member", "month": "Period", "amount": "Paid", "tier": "Tier"},
    )
    assert problems == []
    assert [(r.row, r.member_id, r.amount, r.tier) for r in rows] == [
        (2, "M1", 2500, "std"),
        (4, "M2", -1050, None),
    ]


def test_csv_bad_rows_are_named_by_line_number() -> None:
    rows, problems = parse_payment_csv(
        "member_id,month,amount,paid_date\n"
        "M1,2026-03,25.00,2026-04-01\n"
        ",2026-03,25.00,\n"
        "M3,2026-3,1e3,\n"
        "M4,2026-03,25.00,yesterday\n"
    )
    assert [r.member_id for r in rows] == ["M1"]
    assert {(p.row, p.field) for p in problems} == {
        (3, "member_id"),
        (4, "month"),
        (4, "amount"),
        (5, "paid_date"),
    }
    _, missing = parse_payment_csv("member,month\nM1,2026-03\n")
    assert {(p.row, p.field) for p in missing} == {(1, "member_id"), (1, "amount")}
    _, empty = parse_payment_csv("")
    assert empty[0].code == "empty"
