"""834 enrollment parsing/building, validated against pyx12's 005010X220A1 map."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.tokenizer import X12SyntaxError
from shared.x12.validate import validate_x12
from shared.x12.x834 import (
    ACTION_CHANGE,
    ACTION_REPLACE,
    ACTION_VERIFY,
    MAINT_ADD,
    MAINT_AUDIT,
    MAINT_TERMINATE,
    Address,
    Coverage,
    Enrollment834,
    MemberRecord,
    build_834,
    parse_834,
)

PARTIES = Parties("ZZ", "STATEMCD", "ZZ", "PHARMNET")
CREATED = datetime(2026, 11, 25, 9, 30)


def _member(i: int, maint: str = MAINT_ADD, **kw: object) -> MemberRecord:
    member = MemberRecord(
        is_subscriber=True,
        relationship="18",
        maintenance_type=maint,
        maintenance_reason="28"
        if maint == MAINT_ADD
        else ("07" if maint == MAINT_TERMINATE else "XN"),
        employment_status="FT",
        subscriber_id=f"SUB{i:05d}",
        member_id=f"MCD{i:07d}",
        member_id_qualifier="ZZ",
        last_name="DOE",
        first_name=f"PAT{i}",
        group_number="MTMGRP01",
        address=Address("1 MAIN ST", "TOWN", "NY", "12345"),
        birth_date=date(1950, 1, 1 + i % 28),
        sex="F" if i % 2 else "M",
        eligibility_begin=date(2026, 1, 1),
        coverages=[Coverage(maint, "HLT", "MTMPLAN1", "IND", begin=date(2026, 1, 1))],
    )
    return dataclasses.replace(member, **kw)  # type: ignore[arg-type]


def _enrollment(action: str, members: list[MemberRecord]) -> Enrollment834:
    return Enrollment834(
        action_code=action,
        reference=f"BATCH{action}",
        created=date(2026, 11, 25),
        sponsor_name="STATE MEDICAID",
        sponsor_id="123456789",
        payer_name="ACME HEALTH PLAN",
        payer_id="987654321",
        file_effective_date=date(2026, 12, 1),
        members=members,
    )


def _build(*enrollments: Enrollment834) -> str:
    return build_834(
        list(enrollments), parties=PARTIES, control=ControlNumbers(11, 11, 1), created_at=CREATED
    )


def test_change_file_with_add_change_term_reinstate_validates_and_round_trips() -> None:
    term = _member(3, MAINT_TERMINATE, eligibility_end=date(2026, 11, 30))
    term.coverages[0].end = date(2026, 11, 30)
    members = [_member(1), _member(2, "001"), term, _member(4, "025")]
    enrollment = _enrollment(ACTION_CHANGE, members)
    text = _build(enrollment)
    assert validate_x12(text) == []
    (parsed,) = parse_834(text)
    assert not parsed.is_full_file
    assert [m.maintenance_type for m in parsed.members] == ["021", "001", "024", "025"]
    assert parsed.members == members
    assert dataclasses.replace(parsed, transaction_control_number="") == enrollment


def test_term_record_carries_member_and_coverage_end_dates() -> None:
    term = _member(3, MAINT_TERMINATE, eligibility_end=date(2026, 11, 30))
    term.coverages[0].end = date(2026, 11, 30)
    (parsed,) = parse_834(_build(_enrollment(ACTION_CHANGE, [term])))
    (member,) = parsed.members
    assert member.maintenance_reason == "07"
    assert (member.eligibility_begin, member.eligibility_end) == (
        date(2026, 1, 1),
        date(2026, 11, 30),
    )
    (cov,) = member.coverages
    assert (cov.insurance_line, cov.plan, cov.coverage_level) == ("HLT", "MTMPLAN1", "IND")
    assert (cov.begin, cov.end) == (date(2026, 1, 1), date(2026, 11, 30))


@pytest.mark.parametrize(
    ("action", "full"), [(ACTION_REPLACE, True), (ACTION_VERIFY, True), (ACTION_CHANGE, False)]
)
def test_full_file_flag_from_bgn08(action: str, full: bool) -> None:
    members = [_member(i, MAINT_AUDIT) for i in range(5)]
    text = _build(_enrollment(action, members))
    assert validate_x12(text) == []
    (parsed,) = parse_834(text)
    assert parsed.action_code == action
    assert parsed.is_full_file is full
    assert {m.maintenance_type for m in parsed.members} == {"030"}


def test_handwritten_834_with_dependent_and_coverage_refs() -> None:
    text = (
        "ISA*00*          *00*          *ZZ*STATEMCD       *ZZ*PHARMNET       "
        "*261125*0930*^*00501*000000012*0*T*:~"
        "GS*BE*STATEMCD*PHARMNET*20261125*0930*12*X*005010X220A1~"
        "ST*834*0001*005010X220A1~"
        "BGN*00*B1*20261125*0930****2~"
        "REF*38*POLICY9~"
        "N1*P5*STATE MEDICAID*FI*123456789~"
        "N1*IN*ACME HEALTH PLAN*FI*987654321~"
        "INS*Y*18*021*28*A***FT~REF*0F*SUB1~REF*17*CASE77~DTP*356*D8*20260101~"
        "NM1*IL*1*DOE*JOHN*Q***34*123456789~N3*2 ELM ST*APT 4~N4*CITY*NY*12345~"
        "DMG*D8*19480305*M~HD*021**PDG*RXPLAN*FAM~DTP*348*D8*20260101~REF*1L*GRP42~"
        "INS*N*01*021*28*A~REF*0F*SUB1~"
        "NM1*IL*1*DOE*MARY~DMG*D8*19500607*F~HD*021**PDG*RXPLAN*FAM~DTP*348*D8*20260201~"
        "SE*23*0001~GE*1*12~IEA*1*000000012~"
    )
    assert validate_x12(text) == []
    (enr,) = parse_834(text)
    assert (enr.master_policy, enr.sponsor_id, enr.payer_id) == (
        "POLICY9",
        "123456789",
        "987654321",
    )
    sub, spouse = enr.members
    assert sub.is_subscriber
    assert (sub.member_id_qualifier, sub.member_id, sub.middle_name) == ("34", "123456789", "Q")
    assert sub.other_ids == {"17": "CASE77"}
    assert sub.address == Address("2 ELM ST", "CITY", "NY", "12345", "APT 4")
    assert sub.coverages[0].references == {"1L": "GRP42"}
    assert sub.group_number == ""  # the 1L belongs to the coverage loop, not the member
    assert not spouse.is_subscriber
    assert (spouse.relationship, spouse.subscriber_id, spouse.member_id) == ("01", "SUB1", "")
    assert spouse.birth_date == date(1950, 6, 7)
    assert spouse.coverages[0].begin == date(2026, 2, 1)


def test_rejects_bad_action_code_and_bad_dates() -> None:
    text = _build(_enrollment(ACTION_CHANGE, [_member(1)]))
    with pytest.raises(X12SyntaxError, match="BGN08"):
        parse_834(text.replace("****2~", "****9~"))
    with pytest.raises(X12SyntaxError, match="malformed DMG"):
        parse_834(text.replace("DMG*D8*19500102", "DMG*D8*19501302"))
    with pytest.raises(X12SyntaxError, match="expected an 834"):
        parse_834(text.replace("ST*834", "ST*835"))
