"""271 eligibility response parsing/building.

pyx12 4.0.0 ships no 005010X279A1 map (maps.xml points 005010X092A1 at a missing file),
so generated 271s are checked by re-parsing and by the envelope/trailer checks of the
tokenizer instead of pyx12.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.tokenizer import Delimiters, X12SyntaxError
from shared.x12.validate import validate_x12
from shared.x12.writer import DEFAULT_DELIMITERS
from shared.x12.x271 import (
    Benefit,
    DateRange,
    EligibilityResponse,
    RequestError,
    SubscriberEligibility,
    Trace,
    build_271,
    parse_271,
)

PARTIES = Parties("ZZ", "PAYER01", "ZZ", "PHARM001")
CREATED = datetime(2026, 11, 25, 10, 0)

HANDWRITTEN = (
    "ISA*00*          *00*          *ZZ*PAYER01        *ZZ*PHARM001       "
    "*261125*1000*^*00501*000000021*0*T*:~"
    "GS*HB*PAYER01*PHARM001*20261125*1000*21*X*005010X279A1~"
    "ST*271*0001*005010X279A1~"
    "BHT*0022*11*REQ123*20261125*1000~"
    "HL*1**20*1~NM1*PR*2*ACME HEALTH PLAN*****PI*PAYER01~"
    "HL*2*1*21*1~NM1*1P*2*ACME PHARMACY*****XX*1234567893~"
    "HL*3*2*22*1~TRN*2*TRACE0001*9876543210~"
    "NM1*IL*1*DOE*JANE****MI*MEMBER123~DMG*D8*19500102*F~"
    "DTP*291*RD8*20260101-20261231~"
    "EB*1*IND*30^88^98*MC*MEDICAID MTM~"
    "EB*6*IND*30**PART D~DTP*291*RD8*20250101-20251231~MSG*COVERAGE ENDED~"
    "EB*B*IND*98*MC**27*5~"
    "EB*A*IND*98*MC**27**0.2~DTP*346*D8*20260601~"
    "LS*2120~NM1*PR*2*OTHER PLAN*****PI*OTH01~LE*2120~"
    "HL*4*3*23*0~NM1*03*1*DOE*JIM~DMG*D8*20100304*M~"
    "EB*1*IND*30*MC~DTP*346*D8*20260301~DTP*347*D8*20260930~"
    "SE*28*0001~GE*1*21~IEA*1*000000021~"
)


def test_handwritten_271_subscriber_dependent_and_benefits() -> None:
    (resp,) = parse_271(HANDWRITTEN)
    assert (resp.payer_name, resp.payer_id) == ("ACME HEALTH PLAN", "PAYER01")
    assert (resp.receiver_name, resp.receiver_id) == ("ACME PHARMACY", "1234567893")
    assert (resp.reference, resp.created) == ("REQ123", date(2026, 11, 25))
    sub, dep = resp.subscribers
    assert (sub.member_id, sub.name, sub.birth_date, sub.sex) == (
        "MEMBER123",
        "DOE, JANE",
        date(1950, 1, 2),
        "F",
    )
    assert sub.traces == [Trace("2", "TRACE0001", "9876543210")]
    assert sub.dates == {"291": DateRange(date(2026, 1, 1), date(2026, 12, 31))}
    assert (sub.plan_begin, sub.plan_end) == (date(2026, 1, 1), date(2026, 12, 31))
    active, old, copay, coins = sub.benefits
    # EB03 repetitions split on ISA11
    assert (active.code, active.service_types, active.insurance_type) == (
        "1",
        ("30", "88", "98"),
        "MC",
    )
    assert active.plan == "MEDICAID MTM"
    # no EB-level dates: the member's RD8 plan window applies
    assert (active.begin, active.end) == (date(2026, 1, 1), date(2026, 12, 31))
    assert active.dates == {}
    # EB-level RD8 overrides the member's window
    assert (old.code, old.begin, old.end) == ("6", date(2025, 1, 1), date(2025, 12, 31))
    assert old.messages == ["COVERAGE ENDED"]
    assert (copay.code, copay.amount, copay.time_period) == ("B", 500, "27")
    assert coins.percent is not None
    assert str(coins.percent) == "0.2"
    # EB-level 346 moves the begin; the end is still the member's plan end
    assert (coins.begin, coins.end) == (date(2026, 6, 1), date(2026, 12, 31))
    # the NM1 inside LS/LE is a related entity, not the member
    assert sub.last_name == "DOE"
    assert dep.is_dependent
    assert (dep.subscriber_member_id, dep.member_id, dep.first_name) == (
        "MEMBER123",
        "MEMBER123",
        "JIM",
    )
    (dep_benefit,) = dep.benefits
    assert (dep_benefit.begin, dep_benefit.end) == (date(2026, 3, 1), date(2026, 9, 30))


def test_aaa_errors_at_receiver_and_subscriber_level() -> None:
    text = HANDWRITTEN.replace(
        "NM1*1P*2*ACME PHARMACY*****XX*1234567893~",
        "NM1*1P*2*ACME PHARMACY*****XX*1234567893~AAA*Y**43*C~",
    ).replace("DMG*D8*19500102*F~", "AAA*Y**72*C~DMG*D8*19500102*F~")
    text = text.replace("SE*28*0001~", "SE*30*0001~")
    (resp,) = parse_271(text)
    assert resp.errors == [RequestError("receiver", True, "43", "C")]
    assert resp.subscribers[0].errors == [RequestError("subscriber", True, "72", "C")]
    assert resp.subscribers[1].errors == []


def _response(n: int) -> EligibilityResponse:
    subs: list[SubscriberEligibility] = []
    for i in range(n):
        active = i % 3 != 2
        sub = SubscriberEligibility(
            member_id=f"M{i:06d}",
            last_name="DOE",
            first_name=f"PAT{i}",
            birth_date=date(1950, 1, 1 + i % 28),
            sex="F",
            traces=[Trace("2", f"T{i}", "9876543210")],
            plan_begin=date(2026, 1, 1),
            plan_end=date(2026, 12, 31) if active else date(2026, 6, 30),
            benefits=[
                Benefit(
                    "1" if active else "6",
                    "IND",
                    ("30", "88"),
                    "MC",
                    "MTM PLAN",
                    begin=date(2026, 1, 1),
                    end=date(2026, 12, 31) if active else date(2026, 6, 30),
                ),
                # no dates of its own: parsing gives it the member's window
                Benefit(
                    "B",
                    "IND",
                    ("98",),
                    "MC",
                    time_period="27",
                    amount=250,
                    in_network="Y",
                    begin=date(2026, 1, 1),
                    end=date(2026, 12, 31) if active else date(2026, 6, 30),
                ),
            ],
        )
        subs.append(sub)
        if i % 5 == 0:
            subs.append(
                SubscriberEligibility(
                    member_id=sub.member_id,
                    last_name="DOE",
                    first_name=f"KID{i}",
                    is_dependent=True,
                    subscriber_member_id=sub.member_id,
                    plan_begin=date(2026, 3, 1),
                    plan_end=None,
                    benefits=[Benefit("1", "IND", ("30",), "MC", begin=date(2026, 3, 1))],
                )
            )
    return EligibilityResponse(
        "ACME HEALTH PLAN",
        "PAYER01",
        "ACME PHARMACY",
        "1234567893",
        reference="ROSTER1",
        created=date(2026, 11, 25),
        subscribers=subs,
    )


def _build(resp: EligibilityResponse, delimiters: Delimiters = DEFAULT_DELIMITERS) -> str:
    return build_271(
        [resp],
        parties=PARTIES,
        control=ControlNumbers(21, 21, 1),
        created_at=CREATED,
        delimiters=delimiters,
    )


def test_generated_271_round_trips() -> None:
    resp = _response(12)
    text = _build(resp)
    assert "DTP*291*RD8*20260101-20261231~" in text
    assert "EB*1*IND*30^88*MC*MTM PLAN~" in text
    (parsed,) = parse_271(text)
    assert parsed.transaction_control_number == "0001"
    parsed.transaction_control_number = ""
    for sub in parsed.subscribers:
        sub.dates = {}
    assert parsed == resp


def test_rd8_and_d8_dates_and_other_delimiters() -> None:
    resp = _response(1)
    resp.subscribers[0].dates = {
        "346": DateRange(date(2026, 2, 1)),
        "347": DateRange(date(2026, 8, 31)),
    }
    text = _build(resp, Delimiters("|", "\n", ">", "+"))
    assert "EB|1|IND|30+88|MC|MTM PLAN\n" in text
    (parsed,) = parse_271(text)
    sub = parsed.subscribers[0]
    assert (sub.plan_begin, sub.plan_end) == (date(2026, 2, 1), date(2026, 8, 31))
    assert sub.benefits[0].service_types == ("30", "88")
    # the second benefit has no own dates and inherits the member's 346/347 window
    assert (sub.benefits[1].begin, sub.benefits[1].end) == (date(2026, 2, 1), date(2026, 8, 31))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("DTP*291*RD8*20260101-20261231~", "DTP*291*RD8*20261231-20260101~"),  # reversed
        ("DTP*291*RD8*20260101-20261231~", "DTP*291*RD8*20260101~"),  # not a range
        ("DTP*291*RD8*20260101-20261231~", "DTP*291*D8*2026010~"),
        ("HL*4*3*23*0~", "HL*4*3*99*0~"),
    ],
)
def test_malformed_dates_and_levels_raise(old: str, new: str) -> None:
    with pytest.raises(X12SyntaxError, match="malformed"):
        parse_271(HANDWRITTEN.replace(old, new, 1))


def test_rejects_other_versions() -> None:
    with pytest.raises(X12SyntaxError, match="unsupported 271 version"):
        parse_271(HANDWRITTEN.replace("005010X279A1", "004010X092A1"))


def test_pyx12_has_no_x279_map() -> None:
    """Documents why the 271 tests do not use pyx12: it cannot load a 5010 271 map."""
    problems = validate_x12(_build(_response(1)))
    assert problems, "pyx12 gained a 005010X279A1 map: validate generated 271s with it"


def test_repetition_needed_for_several_service_types() -> None:
    resp = _response(1)
    with pytest.raises(ValueError, match="repetition"):
        _build(resp, Delimiters("*", "~", ":", ""))


def test_service_types_with_a_delimiter_are_rejected() -> None:
    resp = _response(1)
    resp.subscribers[0].benefits[0].service_types = ("30", "8*8")
    with pytest.raises(ValueError, match="delimiter"):
        _build(resp)
