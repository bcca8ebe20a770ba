"""The pure claim decision: coding + pricing + scrub -> ready | on_hold | not_billable."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
import pytest

from services.billing.claims_build import (
    PatientHistory,
    decide,
    patient_control_number,
    tenant_tag,
)
from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.coding import (
    CodingTerms,
    FeeScheduleEntry,
    Modality,
    TelehealthPolicy,
    TimeRule,
)
from services.billing.domain.scrub import PCN_MAX_LENGTH
from services.billing.ports import (
    CoverageChoice,
    EligibilityEvidence,
    EligibilityReason,
    PatientInfo,
    PayerInfo,
)
from services.billing.schemas import SessionCreate
from tests.fixtures.sessions import session_payload

TODAY = date(2026, 11, 27)
TERMS = CodingTerms(
    rule_version="c1@v1",
    time_rule=TimeRule.MIDPOINT,
    telehealth=TelehealthPolicy(frozenset({Modality.IN_PERSON})),
    fee_schedule=(
        FeeScheduleEntry("99605", None, 7500, 6000, date(2025, 1, 1)),
        FeeScheduleEntry("99606", None, 5000, 4000, date(2025, 1, 1)),
        FeeScheduleEntry("99607", None, 2500, 2000, date(2025, 1, 1)),
    ),
    max_addon_units=3,
)


def _evidence(*, eligible: bool = True, terms: CodingTerms | None = TERMS) -> EligibilityEvidence:
    return EligibilityEvidence(
        eligible=eligible,
        checked_on=date(2026, 11, 20),
        reasons=() if eligible else (EligibilityReason("OPTED_OUT", "opted out", "do not bill"),),
        usage=(),
        patient=PatientInfo("p1", "P-1", "Ada", "Lovelace", date(1950, 2, 3), "F", "", "", "", ""),
        coverage=CoverageChoice(
            "s1", "M1", None, "18", "primary", date(2025, 1, 1), None, "c1", 1, "per_encounter"
        ),
        payer=PayerInfo("pay1", "Medicaid", "SKMD0", "R", "RN", "MC", 90, 60, "directory", "TP"),
        coding_terms=terms,
    )


def _cmd(**changes: Any) -> SessionCreate:
    body = session_payload("S-1", **changes)
    body["pharmacy"]["address"]["zip"] = "12345-6789"
    return msgspec.convert(body, SessionCreate)


def test_pcn_is_short_x12_safe_and_tenant_prefixed() -> None:
    assert tenant_tag("acme-pharmacy.east") == "ACMEPH"
    assert tenant_tag("--") == "T"
    pcn = patient_control_number("t-0123456789abcdef", 10**13 - 1)
    assert len(pcn) <= PCN_MAX_LENGTH
    assert pcn == "T01234-9999999999999"
    assert patient_control_number("acme", 42) == "ACME-00000042"


def test_clean_session_is_ready_with_priced_lines() -> None:
    d = decide(pcn="A-1", cmd=_cmd(), evidence=_evidence(), history=PatientHistory(), today=TODAY)
    assert d.status is ClaimStatus.READY
    assert d.transition.source is ClaimStatus.DRAFT
    assert [(x.procedure_code, x.units, x.charge_cents) for x in d.lines] == [
        ("99605", 1, 7500),
        ("99607", 2, 5000),
    ]
    assert d.unit_prices == ((7500, 6000), (2500, 2000))
    assert d.timely_filing_deadline == date(2027, 2, 18)
    assert d.reasons == ()


def test_holds_and_not_billable_carry_named_reasons() -> None:
    held = decide(
        pcn="A-2",
        cmd=_cmd(consent=False),
        evidence=_evidence(),
        history=PatientHistory(),
        today=TODAY,
    )
    assert held.status is ClaimStatus.ON_HOLD
    assert [r.code for r in held.reasons] == ["NO_CONSENT"]

    opted = decide(
        pcn="A-3",
        cmd=_cmd(),
        evidence=_evidence(eligible=False),
        history=PatientHistory(),
        today=TODAY,
    )
    assert opted.status is ClaimStatus.NOT_BILLABLE
    assert "OPTED_OUT" in [r.code for r in opted.reasons]

    nothing = decide(
        pcn="A-4",
        cmd=_cmd(),
        evidence=_evidence(eligible=False, terms=None),
        history=PatientHistory(),
        today=TODAY,
    )
    assert nothing.status is ClaimStatus.NOT_BILLABLE
    assert nothing.lines == ()
    assert nothing.coding_json["rule_version"] is None


@pytest.mark.parametrize("later_status", [ClaimStatus.READY, ClaimStatus.ON_HOLD])
def test_history_makes_the_next_visit_established_and_a_same_day_repeat_a_duplicate(
    later_status: ClaimStatus,
) -> None:
    history = PatientHistory()
    history.add(
        patient_ref="P-1",
        pcn="A-5",
        status=later_status,
        dos=date(2026, 3, 2),
        tin="123456789",
        service_type="CMR",
        codes=["99605", "99607"],
        payer_id="pay1",
        contract_id="c1",
    )
    assert history.before(date(2026, 3, 3))[0].code == "99605"
    assert history.before(date(2026, 3, 2)) == []
    later = decide(
        pcn="A-6",
        cmd=_cmd(date_of_service="2026-06-01"),
        evidence=_evidence(),
        history=history,
        today=TODAY,
    )
    assert later.lines[0].procedure_code == "99606"
    same_day = decide(
        pcn="A-7",
        cmd=_cmd(date_of_service="2026-03-02"),
        evidence=_evidence(),
        history=history,
        today=TODAY,
    )
    assert same_day.status is ClaimStatus.ON_HOLD
    assert "duplicate_service" in [r.code for r in same_day.reasons]


def test_voided_or_not_billable_history_is_no_duplicate_and_no_prior_service() -> None:
    history = PatientHistory()
    history.add(
        patient_ref="P-1",
        pcn="A-8",
        status=ClaimStatus.NOT_BILLABLE,
        dos=date(2026, 3, 2),
        tin="123456789",
        service_type="CMR",
        codes=["99605"],
        payer_id=None,
        contract_id=None,
    )
    assert history.before(date(2027, 1, 1)) == []
    again = decide(
        pcn="A-9",
        cmd=_cmd(date_of_service="2026-03-02"),
        evidence=_evidence(),
        history=history,
        today=date(2026, 3, 20),
    )
    assert again.status is ClaimStatus.READY
