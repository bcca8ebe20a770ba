"""Claim snapshot -> Claim837 mapping and acknowledgment reasons (no I/O)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from services.billing.acknowledgments import reasons_277, reasons_999
from services.billing.submission_build import (
    BatchKey,
    batch_file_name,
    batch_key,
    claim_837,
)
from shared.x12.ack import ClaimAck, ElementError, SegmentError, SetAck, StatusCode, StatusInfo
from shared.x12.envelope import ControlNumbers
from shared.x12.validate import validate_x12
from shared.x12.x837p import Claim837Error, Receiver, Submitter, build_837p_batch

PAYER = {"name": "Plan", "x12_payer_id": "P1", "receiver_id": "R1", "receiver_name": "CH",
         "trading_partner_id": "TP1", "transport": "directory", "claim_filing_indicator": "MC"}  # fmt: skip


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "patient_control_number": "T-00000001",
        "payer": PAYER,
        "subscriber": {"member_id": "M1", "group_number": None, "relationship": "18",
                       "first_name": "Jane", "last_name": "Doe", "birth_date": "1950-01-02",
                       "sex": "F", "address1": "2 Oak", "city": "Town", "state": "NY",
                       "zip": "12345"},
        "billing_provider": {"npi": "1234567893", "tin": "12-3456789", "name": "Acme",
                             "taxonomy": "3336C0003X", "address": {"line1": "1 Main",
                             "city": "Town", "state": "ny", "zip": "12345-6789"}},
        "rendering_provider": {"npi": "1245319599", "first_name": "Pat", "last_name": "Rx",
                               "taxonomy": "183500000X"},
        "total_charge_cents": 7500,
        "place_of_service": "01",
        "frequency_code": "1",
        "payer_icn": None,
        "diagnoses": ["E11.9"],
    }  # fmt: skip
    base.update(changes)
    return base


LINES = [{"procedure_code": "99605", "charge_cents": 7500, "units": 1,
          "date_of_service": date(2026, 11, 10), "modifiers": [], "diagnosis_pointers": [1]}]  # fmt: skip


def test_a_claim_row_maps_to_a_valid_837p() -> None:
    claim = claim_837(row(), LINES)
    assert claim.billing_provider.tin == "123456789"
    assert claim.billing_provider.zip == "123456789"
    assert claim.billing_provider.state == "NY"
    assert claim.diagnoses == ("E119",)
    assert claim.subscriber.claim_filing_indicator == "MC"
    text = build_837p_batch(
        Submitter("US", "SUB1", "ME", "5555550100"), Receiver("CH", "R1"), [claim],
        ControlNumbers(1, 1, 1), datetime(2026, 11, 20, 12, 0), batch_reference="B1",
    ).text  # fmt: skip
    assert validate_x12(text) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subscriber": None}, "no subscriber"),
        ({"subscriber": {**row()["subscriber"], "relationship": "19"}}, "not the subscriber"),
        ({"subscriber": {**row()["subscriber"], "birth_date": "x"}}, "birth date"),
    ],
)
def test_unsendable_snapshots_say_why(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(Claim837Error, match=message):
        claim_837(row(**changes), LINES)


def test_batch_key_and_file_name() -> None:
    key = batch_key("t1", PAYER)
    assert key == BatchKey("t1", "TP1", "R1", "CH", "P1", "Plan", "directory")
    with pytest.raises(Claim837Error, match="no payer"):
        batch_key("t1", None)
    name = batch_file_name(key, 42, "0f1e2d3c-0000-4000-8000-000000000000")
    assert name == "837P-TP1-000000042-0f1e2d3c.x12"


def test_reasons_name_the_segment_element_and_status_code() -> None:
    err = SegmentError("NM1", 9, "8", "2010", (ElementError(9, "1", element_ref="67"),))
    (r,) = reasons_999(SetAck("837", "0001", "R", ("5",)), [err])
    assert r["code"] == "IK3-8"
    assert "NM109: required data element missing" in r["message"]
    (bare,) = reasons_999(SetAck("837", "0002", "R", ("5",)), [])
    assert bare["code"] == "IK5-R"
    ack = ClaimAck(
        "T-1",
        (StatusInfo((StatusCode("A7", "562", "85"),), date(2026, 11, 21), "U", 7500),),
    )
    (r277,) = reasons_277(ack)
    assert r277["code"] == "A7:562:85"
    assert "National Provider Identifier" in r277["message"]
    assert "billing provider" in r277["message"]
