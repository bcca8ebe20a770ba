"""999 and 277CA: generated files pass pyx12 and parse back to the same facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from shared.x12.ack import (
    ClaimStatusInput,
    ElementError,
    SegmentError,
    build_277ca,
    build_999,
    parse_277ca,
    parse_999,
    status_inputs_from_837,
)
from shared.x12.envelope import ControlNumbers
from shared.x12.tokenizer import Delimiters, X12SyntaxError, iter_transactions, tokenize
from shared.x12.validate import validate_x12
from shared.x12.writer import X12WriteError
from tests.unit.x12.test_837p import MARY, PHARMACY_2, claim
from tests.unit.x12.test_837p import build as build_837

ACK_AT = datetime(2026, 11, 21, 8, 30)

# A hand-written 999 in the shape clearinghouses send (CRLF after each segment).
RECEIVED_999 = """ISA*00*          *00*          *ZZ*RECEIVE01      *ZZ*SUBMIT001      *261121*0830*^*00501*000000777*0*T*:~
GS*FA*RECEIVE01*SUBMIT001*20261121*0830*777*X*005010X231A1~
ST*999*0001*005010X231A1~
AK1*HC*45*005010X222A1~
AK2*837*0001*005010X222A1~
IK5*A~
AK2*837*0002*005010X222A1~
IK3*NM1*16*2010*8~
CTX*CLM01:PCN9~
IK4*9*67*1~
IK4*3:1*1035*7*BAD~
IK5*R*5~
AK9*P*2*2*1~
SE*12*0001~
GE*1*777~
IEA*1*000000777~
""".replace("\n", "\r\n")


def test_parse_received_999() -> None:
    assert validate_x12(RECEIVED_999) == []
    (ack,) = parse_999(RECEIVED_999)
    assert (ack.functional_id, ack.group_control_number, ack.version) == (
        "HC",
        "45",
        "005010X222A1",
    )
    assert (ack.group_status, ack.sets_included, ack.sets_received, ack.sets_accepted) == (
        "P",
        2,
        2,
        1,
    )
    assert ack.interchange_control_number == "000000777"
    ok, bad = ack.sets
    assert ok.accepted
    assert ok.control_number == "0001"
    assert not bad.accepted
    assert bad.status == "R"
    assert bad.codes == ("5",)
    assert ack.rejected_sets == (bad,)
    (err,) = bad.errors
    assert (err.segment_id, err.position, err.loop_id, err.code) == ("NM1", 16, "2010", "8")
    assert err.business_unit == ("CLM01", "PCN9")
    assert err.elements == (
        ElementError(position=9, code="1", element_ref="67"),
        ElementError(position=3, code="7", component=1, element_ref="1035", bad_value="BAD"),
    )


def test_build_999_accepting_everything() -> None:
    sent = build_837([claim("A"), claim("B")])
    text = build_999(sent, ControlNumbers(9, 9, 1), ACK_AT)
    assert validate_x12(text) == []
    (ack,) = parse_999(text)
    assert ack.group_status == "A"
    assert ack.group_control_number == "45"
    assert [(s.control_number, s.status) for s in ack.sets] == [("0001", "A")]
    _, segs = tokenize(text)
    # Parties are the 837's, swapped.
    assert segs[0][6].strip() == "RECEIVE01"
    assert segs[0][8].strip() == "SUBMIT001"


def test_build_999_partial_and_full_rejection() -> None:
    from shared.x12.x837p import build_837p_batch
    from tests.unit.x12.test_837p import CONTROL, CREATED, RECEIVER, SUBMITTER

    built = build_837p_batch(
        SUBMITTER, RECEIVER, [claim("A"), claim("B"), claim("C")], CONTROL, CREATED,
        batch_reference="B", max_claims_per_set=1,
    )  # fmt: skip
    error = SegmentError(
        "CLM", 18, "8", "2300",
        (ElementError(2, "7", element_ref="782", bad_value="X"),), ("CLM01", "B"),
    )  # fmt: skip
    text = build_999(
        built.text, ControlNumbers(10, 10, 1), ACK_AT, rejected={"0002": [error]}, line_break="\n"
    )
    assert validate_x12(text) == []
    (ack,) = parse_999(text)
    assert ack.group_status == "P"
    assert ack.sets_accepted == 2
    (bad,) = ack.rejected_sets
    assert bad.control_number == "0002"
    assert bad.errors == (error,)
    assert built.claims_by_set[bad.control_number] == ["B"]  # 999 -> claim linkage

    every = {key: [error] for key in built.claims_by_set}
    (all_bad,) = parse_999(build_999(built.text, ControlNumbers(11, 11, 1), ACK_AT, rejected=every))
    assert all_bad.group_status == "R"
    assert all_bad.sets_accepted == 0
    with pytest.raises(X12WriteError, match="not in the acknowledged file"):
        build_999(built.text, ControlNumbers(12, 12, 1), ACK_AT, rejected={"0099": []})


def _ack_277(claims: list[ClaimStatusInput], **kwargs: object) -> str:
    return build_277ca(
        claims,
        ControlNumbers(20, 20, 1),
        datetime(2026, 11, 22, 9, 15),
        payer_name="ACME HEALTH PLAN",
        payer_id="PAYER01",
        receiver_name="ACME PHARMACY BILLING",
        receiver_id="SUBMIT001",
        receiver_trace="BATCH0001",
        receipt_date=date(2026, 11, 20),
        process_date=date(2026, 11, 22),
        reference="ACK277-1",
        **kwargs,  # type: ignore[arg-type]
    )


def test_277ca_round_trip_acceptances_and_rejections() -> None:
    sent = build_837_for_277()
    inputs = status_inputs_from_837(sent)
    assert [c.patient_control_number for c in inputs] == ["A1", "A2", "B1"]
    inputs[0] = replace(inputs[0], payer_icn="ICN0001", clearinghouse_trace="CH1")
    inputs[1] = replace(inputs[1], category="A7", status="21", entity="85")
    inputs[2] = replace(inputs[2], category="A1", status="19", service_date_to=date(2026, 11, 12))
    text = _ack_277(inputs, line_break="\r\n")
    assert validate_x12(text) == []

    (ack,) = parse_277ca(text)
    assert (ack.reference, ack.created, ack.transaction_type) == (
        "ACK277-1",
        date(2026, 11, 22),
        "TH",
    )
    assert (ack.source_name, ack.source_id) == ("ACME HEALTH PLAN", "PAYER01")
    assert (ack.receipt_date, ack.process_date) == (date(2026, 11, 20), date(2026, 11, 22))
    assert ack.receiver_trace == "BATCH0001"
    assert ack.receiver_id == "SUBMIT001"
    assert [h.level for h in ack.hl_levels] == ["20", "21", "19", "PT", "PT", "19", "PT"]
    assert [(h.id, h.parent) for h in ack.hl_levels][3:] == [
        ("4", "3"),
        ("5", "3"),
        ("6", "2"),
        ("7", "6"),
    ]
    a1, a2, b1 = ack.claims
    assert a1.patient_control_number == "A1"
    assert a1.payer_claim_id == "ICN0001"
    assert a1.clearinghouse_trace == "CH1"
    assert a1.total_cents == 15000
    assert (a1.category, a1.status, a1.is_acceptance, a1.is_rejection) == ("A2", "20", True, False)
    assert a1.statuses[0].action_code == "WQ"
    assert a2.is_rejection
    assert not a2.is_acceptance
    assert a2.codes[0].entity == "85"
    assert a2.statuses[0].action_code == "U"
    assert b1.is_acceptance
    assert b1.category == "A1"
    assert b1.provider_id == PHARMACY_2.npi
    assert (b1.service_date_from, b1.service_date_to) == (date(2026, 11, 10), date(2026, 11, 12))
    assert (a1.patient_last, a1.member_id) == ("DOE", "MEMBER123")
    assert ack.rejected == (a2,)
    assert ack.accepted == (a1, b1)
    # Receiver-level totals are computed from the claim outcomes.
    _, segs = tokenize(text)
    assert ["QTY", "90", "2"] in segs
    assert ["QTY", "AA", "1"] in segs
    assert ["AMT", "YY", "150"] in segs


@pytest.mark.parametrize("category", ["A3", "A4", "A6", "A7", "A8"])
def test_rejection_categories(category: str) -> None:
    (inp,) = status_inputs_from_837(build_837([claim("Z")]))
    text = _ack_277([replace(inp, category=category, status="21")])
    ((c,),) = [a.claims for a in parse_277ca(text)]
    assert c.is_rejection
    assert not c.is_acceptance


def test_parse_277ca_with_service_lines_and_extra_statuses() -> None:
    (inp,) = status_inputs_from_837(build_837([claim("Z")]))
    text = (
        _ack_277([replace(inp, category="A7", status="21")])
        .replace(
            "DTP*472*D8*20261110~SE",
            "DTP*472*D8*20261110~SVC*HC:99605*100~STC*A7:453*20261122*U~REF*FJ*L1~"
            "DTP*472*D8*20261110~SE",
        )
        .replace("STC*A7:21*20261122*U*150", "STC*A7:21*20261122*U*150******A7:562:85")
    )
    # Re-count SE01 for the hand-edited set.
    _, segs = tokenize(text)
    st = next(i for i, s in enumerate(segs) if s[0] == "ST")
    se = next(i for i, s in enumerate(segs) if s[0] == "SE")
    text = text.replace(f"SE*{segs[se][1]}*", f"SE*{se - st + 1}*")
    assert validate_x12(text) == []
    ((c,),) = [a.claims for a in parse_277ca(text)]
    assert [(x.category, x.status, x.entity) for x in c.codes] == [
        ("A7", "21", ""),
        ("A7", "562", "85"),
    ]
    (line,) = c.lines
    assert (line.procedure, line.charge_cents, line.line_item_control) == ("HC:99605", 10000, "L1")
    assert line.statuses[0].codes[0].status == "453"
    assert line.service_date == date(2026, 11, 10)


def test_277ca_other_delimiters_round_trip() -> None:
    (inp,) = status_inputs_from_837(build_837([claim("Z")]))
    text = _ack_277([inp], delimiters=Delimiters("|", "\n", ">", "^"))
    assert validate_x12(text) == []
    ((c,),) = [a.claims for a in parse_277ca(text)]
    assert c.patient_control_number == "Z"
    assert c.is_acceptance
    list(iter_transactions(tokenize(text)[1]))  # envelope counts hold


def test_parsers_reject_wrong_transaction() -> None:
    with pytest.raises(X12SyntaxError, match="no 999"):
        parse_999(build_837([claim()]))
    with pytest.raises(X12SyntaxError, match="no 277"):
        parse_277ca(RECEIVED_999)


def build_837_for_277() -> str:
    return build_837(
        [claim("A1"), claim("A2", subscriber=MARY), claim("B1", billing_provider=PHARMACY_2)]
    )
