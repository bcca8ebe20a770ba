from __future__ import annotations

from datetime import date

import pytest

from services.billing.domain.adjustments import (
    AdjustmentKind,
    GroupCode,
    RemitAdjustment,
    RemitClaim,
    RemitLine,
    RemitOutcome,
    classify_adjustment,
    decide_remit,
)
from shared.codes import (
    CodeTableError,
    DefaultAction,
    DenialCategory,
    load_carc,
    load_pos,
    load_rarc,
    parse_carc,
    parse_rarc,
)

ON = date(2025, 3, 1)
CO, PR, OA, PI = GroupCode.CO, GroupCode.PR, GroupCode.OA, GroupCode.PI


def adj(group: GroupCode, carc: str, cents: int) -> RemitAdjustment:
    return RemitAdjustment(group=group, carc=carc, amount_cents=cents)


# --- code tables -----------------------------------------------------------------------------

DOMAIN_CARCS = [
    "1",
    "2",
    "3",
    "4",
    "5",
    "8",
    "11",
    "16",
    "18",
    "22",
    "26",
    "27",
    "29",
    "31",
    "45",
    "50",
    "96",
    "97",
    "109",
    "119",
    "140",
    "151",
    "170",
    "181",
    "185",
    "197",
    "204",
    "206",
    "207",
    "208",
    "242",
    "252",
]
OTHER_CARCS = ["23", "24", "59", "94", "131", "147", "253", "288"]
MTM_RARCS = ["N130", "N290", "MA130", "M127", "N4", "N56", "M51", "N657", "N704", "MA04", "N30"]


@pytest.mark.parametrize("code", DOMAIN_CARCS + OTHER_CARCS)
def test_carc_table_covers_required_codes(code: str) -> None:
    assert load_carc().lookup(code, ON) is not None


@pytest.mark.parametrize("code", MTM_RARCS)
def test_rarc_table_covers_mtm_remarks(code: str) -> None:
    assert load_rarc().lookup(code, ON) is not None


def test_carc_meanings_match_the_domain_table() -> None:
    carc = load_carc()
    assert carc.lookup("45", ON).category is DenialCategory.CONTRACTUAL  # type: ignore[union-attr]
    assert carc.lookup("29", ON).default_action is DefaultAction.WRITE_OFF  # type: ignore[union-attr]
    assert carc.lookup("18", ON).default_action is DefaultAction.CHECK_STATUS  # type: ignore[union-attr]
    assert carc.lookup("109", ON).default_action is DefaultAction.BILL_OTHER_PAYER  # type: ignore[union-attr]
    assert carc.lookup("252", ON).default_action is DefaultAction.SEND_DOCUMENTATION  # type: ignore[union-attr]
    # 206-209 are often mislabelled in copied tables
    assert "missing" in carc.lookup("206", ON).description.lower()  # type: ignore[union-attr]
    assert "format" in carc.lookup("207", ON).description.lower()  # type: ignore[union-attr]
    assert "match" in carc.lookup("208", ON).description.lower()  # type: ignore[union-attr]
    assert load_rarc().lookup("MA130", ON).no_appeal  # type: ignore[union-attr]


def test_lookup_honours_dates() -> None:
    carc = load_carc()
    assert carc.lookup("17", date(2008, 1, 1)) is not None
    assert carc.lookup("17", date(2009, 7, 1)) is None  # stop date is exclusive
    assert carc.latest("17") is not None
    assert carc.lookup("253", date(2012, 1, 1)) is None  # before sequestration
    assert carc.lookup("nope", ON) is None
    assert "45" in carc
    assert " co45 " not in carc
    assert len(carc) == len(list(carc))


def test_pos_versions() -> None:
    pos = load_pos()
    assert pos.lookup("01", ON).telehealth is False  # type: ignore[union-attr]
    old = pos.lookup("02", date(2021, 6, 1))
    new = pos.lookup("02", date(2022, 6, 1))
    assert old is not None
    assert new is not None
    assert old != new
    assert pos.lookup("10", date(2021, 6, 1)) is None
    assert pos.lookup("10", ON).telehealth  # type: ignore[union-attr]
    assert pos.lookup("11", ON) is not None


HEADER = "code,description,start_date,stop_date,category,default_action\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,x,2020-13-01,,coding,appeal\n", "ISO date"),
        ("1,x,2020-01-01,,made_up,appeal\n", "unknown category"),
        ("1,x,2020-01-01,,coding,pray\n", "unknown default_action"),
        ("1,x,2020-01-01,2019-01-01,coding,appeal\n", "after start_date"),
        ("1,x,2020-01-01,,coding,appeal\n1,y,2021-01-01,,coding,appeal\n", "overlap"),
        (",x,2020-01-01,,coding,appeal\n", "required"),
    ],
)
def test_bad_tables_are_refused(body: str, message: str) -> None:
    with pytest.raises(CodeTableError, match=message):
        parse_carc(HEADER + body)


def test_missing_columns_are_refused() -> None:
    with pytest.raises(CodeTableError, match="missing columns"):
        parse_rarc(HEADER + "N1,x,2020-01-01,,coding,appeal\n")


def test_versions_resolve_by_date() -> None:
    table = parse_carc(
        HEADER
        + "7,old meaning,2000-01-01,2010-01-01,coding,appeal\n"
        + "7,new meaning,2010-01-01,,coding,write_off\n"
    )
    assert table.lookup("7", date(2009, 12, 31)).description == "old meaning"  # type: ignore[union-attr]
    assert table.lookup("7", date(2010, 1, 1)).description == "new meaning"  # type: ignore[union-attr]
    assert table.lookup("7", date(1999, 1, 1)) is None


# --- classification and outcome --------------------------------------------------------------


def test_classify_adjustment_groups() -> None:
    carc = load_carc()
    assert (
        classify_adjustment(adj(CO, "45", 1), carc.lookup("45", ON)) is AdjustmentKind.CONTRACTUAL
    )
    assert (
        classify_adjustment(adj(PR, "2", 1), carc.lookup("2", ON))
        is AdjustmentKind.PATIENT_RESPONSIBILITY
    )
    assert (
        classify_adjustment(adj(PR, "204", 1), carc.lookup("204", ON))
        is AdjustmentKind.PATIENT_RESPONSIBILITY
    )
    assert (
        classify_adjustment(adj(OA, "23", 1), carc.lookup("23", ON)) is AdjustmentKind.CONTRACTUAL
    )
    assert classify_adjustment(adj(CO, "50", 1), carc.lookup("50", ON)) is AdjustmentKind.DENIAL
    assert classify_adjustment(adj(OA, "18", 1), carc.lookup("18", ON)) is AdjustmentKind.DENIAL
    assert classify_adjustment(adj(CO, "999", 1), None) is AdjustmentKind.DENIAL


def test_paid_with_contractual_and_patient_share() -> None:
    remit = RemitClaim(
        status_code="1",
        charge_cents=10000,
        paid_cents=6000,
        lines=(RemitLine("99605", 10000, 6000, (adj(CO, "45", 2500), adj(PR, "2", 1500))),),
    )
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.PAID
    assert decision.denied_cents == 0
    assert decision.contractual_cents == 2500
    assert decision.patient_responsibility_cents == 1500
    assert decision.denial is None
    assert decision.balanced


def test_partially_paid_when_a_line_is_denied() -> None:
    remit = RemitClaim(
        status_code="1",
        charge_cents=15000,
        paid_cents=7000,
        lines=(
            RemitLine("99605", 10000, 7000, (adj(CO, "45", 3000),)),
            RemitLine("99607", 5000, 0, (adj(CO, "151", 5000),), ("N362",)),
        ),
    )
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.PARTIALLY_PAID
    assert decision.denied_cents == 5000
    assert decision.contractual_cents == 3000
    assert decision.denial is not None
    assert decision.denial.carc == "151"
    assert decision.denial.category is DenialCategory.DOCUMENTATION
    assert decision.denial.action is DefaultAction.APPEAL
    assert decision.denial.remark_codes == ("N362",)
    assert decision.balanced


def test_zero_pay_denial_detected_from_cas_not_clp02() -> None:
    remit = RemitClaim(
        status_code="1",  # processed as primary, yet nothing paid
        charge_cents=10000,
        paid_cents=0,
        adjustments=(adj(CO, "197", 10000),),
    )
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.DENIED
    assert decision.denied_cents == 10000
    assert decision.denial is not None
    assert decision.denial.category is DenialCategory.AUTHORIZATION


def test_clp02_4_alone_is_not_a_denial() -> None:
    remit = RemitClaim(status_code="4", charge_cents=10000, paid_cents=0)
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.NEEDS_REVIEW
    assert decision.denial is None
    assert not decision.balanced


def test_clp02_4_with_cas_uses_the_cas() -> None:
    remit = RemitClaim(
        status_code="4", charge_cents=10000, paid_cents=0, adjustments=(adj(CO, "31", 10000),)
    )
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.DENIED
    assert decision.denial is not None
    assert decision.denial.category is DenialCategory.ELIGIBILITY_COB


def test_zero_pay_all_deductible_is_not_a_denial() -> None:
    remit = RemitClaim(
        status_code="1",
        charge_cents=8000,
        paid_cents=0,
        adjustments=(adj(CO, "45", 2000), adj(PR, "1", 6000)),
    )
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.PATIENT_RESPONSIBILITY
    assert decision.patient_responsibility_cents == 6000
    assert decision.denied_cents == 0


def test_reversal() -> None:
    remit = RemitClaim(
        status_code="22",
        charge_cents=-10000,
        paid_cents=-6000,
        adjustments=(adj(CO, "45", -2500), adj(PR, "2", -1500)),
    )
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.REVERSED
    assert decision.paid_cents == -6000
    assert decision.contractual_cents == -2500
    assert decision.patient_responsibility_cents == -1500
    assert decision.denial is None
    assert decision.balanced


def test_primary_denial_is_the_largest() -> None:
    remit = RemitClaim(
        status_code="1",
        charge_cents=15000,
        paid_cents=0,
        lines=(
            RemitLine("99605", 10000, 0, (adj(CO, "50", 10000),)),
            RemitLine("99607", 5000, 0, (adj(CO, "97", 5000),)),
        ),
    )
    decision = decide_remit(remit, on=ON)
    assert decision.denial is not None
    assert decision.denial.carc == "50"
    assert decision.denial.amount_cents == 15000
    assert decision.denial.category is DenialCategory.MEDICAL_NECESSITY


def test_co_non_covered_is_written_off_pr_is_billed_to_patient() -> None:
    co = decide_remit(RemitClaim("1", 5000, 0, adjustments=(adj(CO, "204", 5000),)), on=ON)
    assert co.denial is not None
    assert co.denial.action is DefaultAction.WRITE_OFF
    pi = decide_remit(RemitClaim("1", 5000, 0, adjustments=(adj(PI, "204", 5000),)), on=ON)
    assert pi.denial is not None
    assert pi.denial.action is DefaultAction.BILL_PATIENT
    pr = decide_remit(RemitClaim("1", 5000, 0, adjustments=(adj(PR, "204", 5000),)), on=ON)
    assert pr.outcome is RemitOutcome.PATIENT_RESPONSIBILITY


def test_see_remark_carc_takes_category_from_rarc() -> None:
    remit = RemitClaim("1", 5000, 0, adjustments=(adj(CO, "16", 5000),), remark_codes=("N290",))
    decision = decide_remit(remit, on=ON)
    assert decision.denial is not None
    assert decision.denial.category is DenialCategory.MISSING_INFORMATION
    assert decision.denial.action is DefaultAction.CORRECT_RESUBMIT


def test_no_appeal_remark_blocks_an_appeal() -> None:
    remit = RemitClaim(
        "1", 5000, 0, lines=(RemitLine("99605", 5000, 0, (adj(CO, "50", 5000),), ("MA130",)),)
    )
    decision = decide_remit(remit, on=ON)
    assert decision.denial is not None
    assert decision.denial.no_appeal
    assert decision.denial.action is DefaultAction.CORRECT_RESUBMIT


def test_unknown_codes_are_reported_and_worked() -> None:
    remit = RemitClaim("1", 5000, 0, adjustments=(adj(CO, "9999", 5000),), remark_codes=("ZZ1",))
    decision = decide_remit(remit, on=ON)
    assert decision.outcome is RemitOutcome.DENIED
    assert decision.unknown_codes == ("CARC 9999", "RARC ZZ1")
    assert decision.denial is not None
    assert decision.denial.category is DenialCategory.OTHER
    assert decision.denial.action is DefaultAction.CHECK_STATUS


def test_unbalanced_line_is_flagged() -> None:
    remit = RemitClaim(
        "1",
        10000,
        6000,
        adjustments=(adj(CO, "45", 4000),),
        lines=(RemitLine("99605", 10000, 7000, ()),),
    )
    assert not decide_remit(remit, on=ON).balanced
