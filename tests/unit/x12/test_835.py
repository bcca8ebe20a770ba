"""835 ERA parsing, the three balancing equations and the generator (pyx12-validated)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.tokenizer import Delimiters, X12SyntaxError
from shared.x12.validate import validate_x12
from shared.x12.writer import DEFAULT_DELIMITERS
from shared.x12.x835 import (
    Address,
    Adjustment,
    BankAccounts,
    ClaimPayment,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    build_835,
    check_balance,
    parse_835,
)

SAMPLE = Path("/work/shared/samples/835_one_claim.x12")
PARTIES = Parties("ZZ", "PAYER01", "ZZ", "SUBMIT001")
CREATED = datetime(2026, 11, 25, 9, 0)
NPI = "1234567893"


def _sample_text() -> str:
    if SAMPLE.exists():
        return SAMPLE.read_text()
    pytest.skip("team sample 835 not mounted")


def _one(text: str) -> Remittance:
    remits = parse_835(text)
    assert len(remits) == 1
    return remits[0]


def _line(code: str, charge: int, paid: int, *adjs: Adjustment, units: int = 1) -> ServiceLine:
    return ServiceLine(
        code=code,
        charge=charge,
        paid=paid,
        units=Decimal(units),
        service_date=date(2026, 11, 10),
        adjustments=list(adjs),
        allowed=charge - sum(a.amount for a in adjs if a.group == "CO"),
    )


def _claim(pcn: str, *lines: ServiceLine, status: str = "1", icn: str = "") -> ClaimPayment:
    return ClaimPayment(
        patient_control_number=pcn,
        status=status,
        charge=sum(x.charge for x in lines),
        paid=sum(x.paid for x in lines),
        patient_responsibility=sum(
            a.amount for x in lines for a in x.adjustments if a.group == "PR"
        ),
        filing_indicator="MC",
        payer_icn=icn or f"ICN{pcn}",
        facility_code="01",
        frequency="1",
        patient_last="DOE",
        patient_first="JANE",
        member_id=f"M{pcn}",
        lines=list(lines),
    )


def _remit(claims: list[ClaimPayment], plb: list[ProviderAdjustment] | None = None) -> Remittance:
    plb = plb or []
    net = sum(c.paid for c in claims) - sum(p.amount for p in plb)
    return Remittance(
        handling_code="I",
        paid_amount=abs(net),
        credit_debit="D" if net < 0 else "C",
        payment_method="ACH",
        payment_date=date(2026, 11, 25),
        trace_number="EFT0001",
        trace_originator_id="1512345678",
        payer_name="ACME HEALTH PLAN",
        payee_name="ACME PHARMACY",
        payee_id_qualifier="XX",
        payee_id=NPI,
        payee_tax_id="123456789",
        payer_address=Address("1 PAYER WAY", "PAYERTOWN", "NY", "12345"),
        payer_contact_name="PAYER SUPPORT",
        payer_contact_phone="5555550000",
        production_date=date(2026, 11, 25),
        bank=BankAccounts("CCP", "999999992", "123456", "1512345678", "999988880", "98765"),
        claims=claims,
        plb=plb,
    )


def _mtm_claim(i: int) -> ClaimPayment:
    """Varied but balanced MTM claims: paid, copay, coinsurance with 99607 units, denial."""
    pcn = f"PCN{i:06d}"
    kind = i % 4
    if kind == 0:
        return _claim(
            pcn,
            _line("99605", 10000, 8000, Adjustment("CO", "45", 1500), Adjustment("PR", "3", 500)),
        )
    if kind == 1:
        return _claim(
            pcn,
            _line("99606", 7500, 6000, Adjustment("CO", "45", 1000), Adjustment("PR", "2", 500)),
            _line(
                "99607",
                5000,
                3000,
                Adjustment("CO", "45", 1000),
                Adjustment("PR", "2", 1000),
                units=2,
            ),
        )
    if kind == 2:
        line = _line("99605", 10000, 0, Adjustment("CO", "197", 10000))
        line.remark_codes.append("N54")
        line.allowed = None
        return _claim(pcn, line)
    claim = _claim(pcn, _line("99606", 7500, 6750, Adjustment("CO", "45", 750)))
    claim.lines[0].control_number = f"LI{i}"
    return claim


def _build(
    remits: list[Remittance], delimiters: Delimiters = DEFAULT_DELIMITERS, line_break: str = ""
) -> str:
    return build_835(
        remits,
        parties=PARTIES,
        control=ControlNumbers(7, 7, 1),
        created_at=CREATED,
        delimiters=delimiters,
        line_break=line_break,
    )


# ----------------------------------------------------------------- the team sample


def test_sample_parses_with_hand_checked_numbers() -> None:
    remit = _one(_sample_text())
    assert (remit.handling_code, remit.credit_debit, remit.payment_method) == ("I", "C", "ACH")
    assert remit.paid_amount == 12000
    assert remit.net_payment == 12000
    assert remit.payment_date == date(2026, 11, 25)
    assert (remit.trace_number, remit.trace_originator_id) == ("EFT0001", "1512345678")
    assert remit.payer_name == "ACME HEALTH PLAN"
    assert remit.payee_name == "ACME PHARMACY"
    assert remit.payee_npi == NPI
    assert remit.payee_tax_id == "123456789"
    assert remit.transaction_control_number == "0001"
    assert remit.interchange_control_number == "000000002"
    assert remit.plb == []
    (claim,) = remit.claims
    assert claim.patient_control_number == "PATACCT001"
    assert claim.status == "1"
    assert (claim.charge, claim.paid, claim.patient_responsibility) == (15000, 12000, 1000)
    assert (claim.filing_indicator, claim.payer_icn, claim.frequency) == ("12", "CLAIM0001", "1")
    assert (claim.patient_last, claim.patient_first, claim.member_id) == (
        "DOE",
        "JOHN",
        "MEMBER123",
    )
    assert claim.adjustments == []
    first, second = claim.lines
    # 100.00 - (CO-45 15.00 + PR-2 5.00) = 80.00
    assert (first.code, first.charge, first.paid, first.units) == ("99605", 10000, 8000, Decimal(1))
    assert first.adjustments == [Adjustment("CO", "45", 1500), Adjustment("PR", "2", 500)]
    assert first.allowed == 8500
    assert first.service_date == date(2026, 11, 10)
    # 50.00 - (CO-45 5.00 + PR-2 5.00) = 40.00, two 99607 units
    assert (second.code, second.charge, second.paid, second.units) == (
        "99607",
        5000,
        4000,
        Decimal(2),
    )
    assert second.allowed == 4500
    # claim: 150.00 - 30.00 = 120.00; CLP05 10.00 = sum of PR; file: 120.00 = 120.00 - 0
    assert sum(a.amount for x in claim.lines for a in x.adjustments if a.group == "PR") == 1000
    assert check_balance(remit) == []


def test_sample_round_trips_through_the_generator_and_pyx12() -> None:
    remit = _one(_sample_text())
    text = _build([remit])
    assert validate_x12(text) == []
    again = _one(text)
    assert dataclasses.replace(again, interchange_control_number="", group_control_number="") == (
        dataclasses.replace(remit, interchange_control_number="", group_control_number="")
    )


# ----------------------------------------------------------------- balancing


def test_unbalanced_line_is_reported_at_line_level_only() -> None:
    text = _sample_text().replace("SVC*HC:99605*100.00*80.00", "SVC*HC:99605*100.00*81.00")
    (err,) = check_balance(_one(text))
    assert err.level == "line"
    assert err.where == ("PATACCT001", 0)
    assert (err.expected, err.actual) == (8000, 8100)


def test_unbalanced_claim_is_reported_at_claim_level() -> None:
    text = _sample_text().replace("*150.00*120.00*10.00*", "*150.00*119.00*10.00*")
    text = text.replace("BPR*I*120.00", "BPR*I*119.00")
    (err,) = check_balance(_one(text))
    assert err.level == "claim"
    assert err.where == ("PATACCT001", None)
    assert err.claim_index == 0
    assert (err.expected, err.actual) == (12000, 11900)


def test_unbalanced_file_is_reported_at_file_level() -> None:
    text = _sample_text().replace("BPR*I*120.00", "BPR*I*125.00")
    (err,) = check_balance(_one(text))
    assert err.level == "file"
    assert err.pcn is None
    assert (err.expected, err.actual) == (12000, 12500)


def test_positive_plb_reduces_payment_and_negative_plb_adds() -> None:
    claims = [_mtm_claim(0)]  # pays 80.00
    plb = [
        ProviderAdjustment(NPI, date(2026, 12, 31), "WO", 2000, "ICNOLD1"),  # recoup 20.00
        ProviderAdjustment(NPI, date(2026, 12, 31), "L6", -250),  # interest 2.50
    ]
    remit = _remit(claims, plb)
    assert remit.paid_amount == 8000 - 2000 + 250
    text = _build([remit])
    assert "PLB*1234567893*20261231*WO:ICNOLD1*20*L6*-2.5~" in text
    assert validate_x12(text) == []
    parsed = _one(text)
    assert parsed.plb == plb
    assert check_balance(parsed) == []
    # the wrong sign convention (adding PLB) must not balance
    wrong = text.replace("BPR*I*62.5*", "BPR*I*102.5*")
    (err,) = check_balance(_one(wrong))
    assert err.level == "file"
    assert err.expected == 6250


def test_debit_bpr_is_negative() -> None:
    remit = _remit([_mtm_claim(0)], [ProviderAdjustment(NPI, date(2026, 12, 31), "WO", 10000, "X")])
    assert (remit.credit_debit, remit.paid_amount) == ("D", 2000)
    parsed = _one(_build([remit]))
    assert parsed.net_payment == -2000
    assert check_balance(parsed) == []
    flipped = dataclasses.replace(parsed, credit_debit="C")
    assert [e.level for e in check_balance(flipped)] == ["file"]


def test_reversal_and_correction_pair_parse_and_balance() -> None:
    original = _mtm_claim(0)
    reversal = copy.deepcopy(original)
    reversal.status = "22"
    reversal.charge, reversal.paid = -reversal.charge, -reversal.paid
    reversal.patient_responsibility = -reversal.patient_responsibility
    for line in reversal.lines:
        line.charge, line.paid = -line.charge, -line.paid
        line.allowed = -line.allowed if line.allowed is not None else None
        line.adjustments = [dataclasses.replace(a, amount=-a.amount) for a in line.adjustments]
    corrected = _claim("PCN000000", _line("99605", 10000, 8500, Adjustment("CO", "45", 1500)))
    remit = _remit([reversal, corrected])
    assert remit.paid_amount == 500  # -80.00 + 85.00
    text = _build([remit])
    assert "CLP*PCN000000*22*-100*-80*-5*" in text
    assert "CAS*CO*45*-15~" in text
    assert validate_x12(text) == []
    parsed = _one(text)
    rev, cor = parsed.claims
    assert (rev.status, rev.charge, rev.paid) == ("22", -10000, -8000)
    assert rev.lines[0].adjustments == [Adjustment("CO", "45", -1500), Adjustment("PR", "3", -500)]
    assert (cor.status, cor.paid) == ("1", 8500)
    assert check_balance(parsed) == []


def test_cas_with_several_triples_and_quantities() -> None:
    text = _sample_text().replace("CAS*CO*45*15.00~", "CAS*CO*45*10.00*1*253*2.5**97*2.50*1.5~")
    remit = _one(text)
    adjs = remit.claims[0].lines[0].adjustments
    assert adjs == [
        Adjustment("CO", "45", 1000, Decimal(1)),
        Adjustment("CO", "253", 250),
        Adjustment("CO", "97", 250, Decimal("1.5")),
        Adjustment("PR", "2", 500),
    ]
    assert check_balance(remit) == []
    assert validate_x12(text) == []


def test_seven_triples_are_split_over_two_cas_segments() -> None:
    adjs = [Adjustment("CO", str(c), 100) for c in (45, 97, 253, 59, 94, 131, 144)]
    line = _line("99605", 10000, 9300, *adjs)
    text = _build([_remit([_claim("P1", line)])])
    assert text.count("CAS*CO*") == 2
    assert validate_x12(text) == []
    assert _one(text).claims[0].lines[0].adjustments == adjs


def test_claim_level_adjustments_count_with_line_adjustments() -> None:
    claim = _mtm_claim(0)  # 100 charge, line paid 80
    claim.adjustments.append(Adjustment("OA", "23", 1000))  # prior payer paid 10.00
    claim.paid = 7000
    remit = _remit([claim])
    text = _build([remit])
    assert validate_x12(text) == []
    parsed = _one(text)
    assert parsed.claims[0].adjustments == [Adjustment("OA", "23", 1000)]
    assert check_balance(parsed) == []


def test_adjustment_duplicated_at_claim_and_line_level_is_called_out() -> None:
    claim = _mtm_claim(0)
    claim.adjustments.append(Adjustment("CO", "45", 1500))  # same CO-45 15.00 as the line
    (err,) = check_balance(_remit([claim]))
    assert err.level == "claim"
    assert "both claim and line level" in err.message
    assert (err.expected, err.actual) == (6500, 8000)


def test_balanced_claim_with_same_adjustment_at_both_levels_is_not_flagged() -> None:
    claim = _mtm_claim(0)
    claim.adjustments.append(Adjustment("CO", "45", 1500))
    claim.paid -= 1500  # the payer really took it twice and says so in CLP04
    assert check_balance(_remit([claim])) == []


# ----------------------------------------------------------------- structure


def test_different_delimiters() -> None:
    flat = _sample_text().replace("\r", "").replace("\n", "")
    text = flat.replace("*", "|").replace("~", "\n").replace(":", ">")
    remit = _one(text)
    assert remit.claims[0].lines[1].code == "99607"
    assert check_balance(remit) == []
    built = _build([remit], delimiters=Delimiters("|", "!", ">", "^"))
    assert "SVC|HC>99605|100|80||1!" in built
    assert _one(built).claims == remit.claims


def test_many_claims_several_transactions_validate_with_pyx12() -> None:
    first = _remit([_mtm_claim(i) for i in range(120)])
    second = _remit(
        [_mtm_claim(i) for i in range(120, 150)],
        [ProviderAdjustment(NPI, date(2026, 12, 31), "CT", -85000, "CAP202611")],
    )
    second.trace_number = "EFT0002"
    text = _build([first, second], line_break="\n")
    assert validate_x12(text) == []
    parsed = parse_835(text)
    assert [r.transaction_control_number for r in parsed] == ["0001", "0002"]
    assert [len(r.claims) for r in parsed] == [120, 30]
    assert parsed[1].plb[0].reason == "CT"
    assert parsed[1].plb[0].amount == -85000
    assert all(check_balance(r) == [] for r in parsed)
    assert parsed[0].claims[2].lines[0].remark_codes == ["N54"]
    assert parsed[0].claims[3].lines[0].control_number == "LI3"


def test_multiple_lx_groups_and_claim_dates() -> None:
    text = _sample_text().replace(
        "NM1*QC*1*DOE*JOHN****MI*MEMBER123~",
        "NM1*QC*1*DOE*JOHN****MI*MEMBER123~DTM*232*20261110~DTM*233*20261111~"
        "DTM*050*20261115~AMT*AU*150.00~",
    )
    second_lx = (
        "LX*2~CLP*PATACCT002*2*75*0**12*CLAIM0002~NM1*QC*1*ROE*RITA****MI*MEMBER456~"
        "SVC*HC:99606:93*75*0**1*HC:99605~DTM*472*20261112~CAS*CO*4*75~LQ*HE*M77~LQ*HE*N56~"
    )
    text = text.replace("SE*24*0001~", second_lx + "SE*36*0001~")
    remit = _one(text)
    assert validate_x12(text) == []
    first, second = remit.claims
    assert (first.statement_from, first.statement_to) == (date(2026, 11, 10), date(2026, 11, 11))
    assert first.received_date == date(2026, 11, 15)
    assert first.amounts == {"AU": 15000}
    assert second.status == "2"
    assert second.patient_responsibility == 0
    (line,) = second.lines
    assert (line.code, line.modifiers, line.original_code) == ("99606", ("93",), "99605")
    assert line.remark_codes == ["M77", "N56"]
    assert check_balance(remit) == []


@pytest.mark.parametrize(
    ("old", "new", "segment"),
    [
        ("SVC*HC:99605*100.00*80.00", "SVC*HC:99605*1OO.00*80.00", "SVC"),
        ("CAS*CO*45*15.00", "CAS*CO*45*", "CAS"),
        ("CLP*PATACCT001*1*150.00", "CLP*PATACCT001*1*", "CLP"),
        ("DTM*472*20261110", "DTM*472*2026111", "DTM"),
    ],
)
def test_malformed_segments_raise_with_their_position(old: str, new: str, segment: str) -> None:
    with pytest.raises(X12SyntaxError, match=f"malformed {segment}.*segment"):
        parse_835(_sample_text().replace(old, new, 1))


def test_rejects_other_transaction_sets_and_versions() -> None:
    with pytest.raises(X12SyntaxError, match="unsupported 835 version"):
        parse_835(_sample_text().replace("005010X221A1", "004010X091A1"))
    with pytest.raises(X12SyntaxError, match="expected an 835"):
        parse_835(_sample_text().replace("ST*835*", "ST*837*"))


def test_amounts_with_unusual_precision() -> None:
    text = (
        _sample_text().replace("AMT*B6*85.00", "AMT*B6*85.005").replace("BPR*I*120.00", "BPR*I*120")
    )
    remit = _one(text)
    assert remit.paid_amount == 12000
    assert remit.claims[0].lines[0].allowed == 8501  # half up, as shared.money does


def test_generator_requires_payer_contact() -> None:
    remit = _remit([_mtm_claim(0)])
    remit.payer_address = None
    with pytest.raises(ValueError, match="payer address"):
        _build([remit])
    with pytest.raises(ValueError, match="at least one"):
        _build([])
