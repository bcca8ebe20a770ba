"""837P generation: pyx12-valid output, balanced totals, envelope arithmetic, round trips."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime

import pytest

from shared.money import parse_x12_amount
from shared.x12.envelope import ControlNumbers
from shared.x12.tokenizer import Delimiters, iter_transactions, tokenize
from shared.x12.validate import validate_x12
from shared.x12.writer import X12WriteError
from shared.x12.x837p import (
    BillingProvider,
    Claim837,
    Claim837Error,
    ClaimLine,
    Payer,
    Receiver,
    RenderingProvider,
    Submitter,
    Subscriber,
    build_837p,
    build_837p_batch,
)

SUBMITTER = Submitter("ACME PHARMACY BILLING", "SUBMIT001", "JANE DOE", "5555551234")
RECEIVER = Receiver("ACME HEALTH PLAN", "RECEIVE01")
PHARMACY = BillingProvider(
    "ACME PHARMACY", "1234567893", "123456789", "123 MAIN ST", "ANYTOWN", "NY", "123451234",
    "3336C0003X",
)  # fmt: skip
PHARMACY_2 = replace(PHARMACY, name="CORNER DRUG", npi="1245319599", tin="987654321")
JOHN = Subscriber(
    "DOE", "JOHN", "MEMBER123", "456 OAK ST", "ANYTOWN", "NY", "12345", date(1960, 1, 1), "M",
    "GRP123",
)  # fmt: skip
MARY = Subscriber(
    "ROE", "MARY", "MEMBER456", "9 ELM ST", "OTHERTOWN", "NJ", "070011234", date(1948, 5, 31),
    "F", None, "P", "MB",
)  # fmt: skip
PAYER = Payer("ACME HEALTH PLAN", "PAYER01")
MEDICARE = Payer("MEDICARE PART B", "MCR01")
PHARMACIST = RenderingProvider("SMITH", "ANNA", "1982736450", "183500000X")
DOS = date(2026, 11, 10)
CREATED = datetime(2026, 11, 20, 12, 0)
CONTROL = ControlNumbers(isa13=123, gs06=45, st02_start=1)


def claim(pcn: str = "PATACCT001", **changes: object) -> Claim837:
    base = Claim837(
        patient_control_number=pcn,
        total_cents=15000,
        place_of_service="01",
        frequency_code="1",
        diagnoses=("E119", "I10"),
        lines=(
            ClaimLine("99605", 10000, 1, DOS, (), (1, 2)),
            ClaimLine("99607", 5000, 2, DOS, (), (1, 2)),
        ),
        billing_provider=PHARMACY,
        subscriber=JOHN,
        payer=PAYER,
        rendering=PHARMACIST,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def build(claims: list[Claim837], **kwargs: object) -> str:
    return build_837p(
        SUBMITTER,
        RECEIVER,
        claims,
        CONTROL,
        CREATED,
        batch_reference="BATCH0001",
        **kwargs,  # type: ignore[arg-type]
    )


def assert_valid(text: str) -> None:
    assert validate_x12(text) == []


def test_one_claim_is_pyx12_valid_and_matches_the_reference_shape() -> None:
    text = build([claim()])
    assert_valid(text)
    _, segs = tokenize(text)
    ids = [s[0] for s in segs]
    assert ids[:8] == ["ISA", "GS", "ST", "BHT", "NM1", "PER", "NM1", "HL"]
    assert ["BHT", "0019", "00", "BATCH0001", "20261120", "1200", "CH"] in segs
    assert ["CLM", "PATACCT001", "150", "", "", "01:B:1", "Y", "A", "Y", "Y"] in segs
    assert ["HI", "ABK:E119", "ABF:I10"] in segs
    assert ["NM1", "82", "1", "SMITH", "ANNA", "", "", "", "XX", "1982736450"] in segs
    assert ["PRV", "BI", "PXC", "3336C0003X"] in segs
    assert ["SV1", "HC:99607", "50", "UN", "2", "", "", "1:2"] in segs
    assert not any(s[0] == "REF" and s[1] == "F8" for s in segs)


def test_many_claims_multiple_providers_and_subscribers() -> None:
    claims = [
        claim("A1"),
        claim(
            "B1",
            billing_provider=PHARMACY_2,
            subscriber=MARY,
            payer=MEDICARE,
            place_of_service="10",
        ),
        claim("A2", subscriber=MARY, payer=MEDICARE),
        claim("A3"),  # same provider+subscriber as A1: grouped under the same HL
        claim("B2", billing_provider=PHARMACY_2),
    ]
    text = build(claims)
    assert_valid(text)
    _, segs = tokenize(text)
    hls = [s[1:5] for s in segs if s[0] == "HL"]
    assert hls == [
        ["1", "", "20", "1"], ["2", "1", "22", "0"], ["3", "1", "22", "0"],
        ["4", "", "20", "1"], ["5", "4", "22", "0"], ["6", "4", "22", "0"],
    ]  # fmt: skip
    assert [s[1] for s in segs if s[0] == "CLM"] == ["A1", "A3", "A2", "B1", "B2"]
    assert ["SBR", "P", "18", "", "", "", "", "", "", "MB"] in segs


def test_counts_and_control_numbers_by_retokenizing() -> None:
    claims = [claim(f"PCN{i}") for i in range(7)]
    built = build_837p_batch(
        SUBMITTER, RECEIVER, claims, ControlNumbers(987654321, 77, 12), CREATED,
        batch_reference="B7", max_claims_per_set=3, usage="P",
    )  # fmt: skip
    assert_valid(built.text)
    _, segs = tokenize(built.text)
    found = list(iter_transactions(segs))  # raises on any SE/GE/IEA mismatch
    assert [t.control_number for _, _, t in found] == ["0012", "0013", "0014"]
    assert built.claims_by_set == {
        "0012": ["PCN0", "PCN1", "PCN2"], "0013": ["PCN3", "PCN4", "PCN5"], "0014": ["PCN6"]
    }  # fmt: skip
    for _, _, tset in found:
        assert tset.segments[-1] == ["SE", str(len(tset.segments)), tset.control_number]
        assert [s[1] for s in tset.segments if s[0] == "HL"] == ["1", "2"]
    assert segs[0][13] == "987654321"
    assert segs[0][15] == "P"
    assert segs[1][6] == "77"
    assert segs[-2] == ["GE", "3", "77"]
    assert segs[-1] == ["IEA", "1", "987654321"]
    assert built.segment_count == len(segs)
    clm_total = sum(parse_x12_amount(s[2]) for s in segs if s[0] == "CLM")
    line_total = sum(parse_x12_amount(s[2]) for s in segs if s[0] == "SV1")
    assert clm_total == line_total == 7 * 15000


def test_replacement_and_void_carry_ref_f8() -> None:
    text = build(
        [
            claim("R7", frequency_code="7", payer_icn="CLAIM0001"),
            claim("V8", frequency_code="8", payer_icn="CLAIM0002", prior_authorization="PA99"),
        ]
    )
    assert_valid(text)
    _, segs = tokenize(text)
    assert ["CLM", "R7", "150", "", "", "01:B:7", "Y", "A", "Y", "Y"] in segs
    assert ["REF", "F8", "CLAIM0001"] in segs
    assert ["REF", "F8", "CLAIM0002"] in segs
    assert ["REF", "G1", "PA99"] in segs
    with pytest.raises(Claim837Error, match="REF\\*F8"):
        build([claim("R7", frequency_code="7")])
    with pytest.raises(Claim837Error, match="frequency"):
        build([claim("X", frequency_code="2")])


def test_telehealth_modifiers() -> None:
    lines = (
        ClaimLine("99606", 9000, 1, DOS, ("95",), (1,)),
        ClaimLine("99607", 4000, 1, DOS, ("93", "GT"), (1,)),
    )
    text = build([claim(lines=lines, total_cents=13000, place_of_service="10")])
    assert_valid(text)
    _, segs = tokenize(text)
    assert ["SV1", "HC:99606:95", "90", "UN", "1", "", "", "1"] in segs
    assert ["SV1", "HC:99607:93:GT", "40", "UN", "1", "", "", "1"] in segs


def test_twelve_diagnoses_four_pointers() -> None:
    dx = ("E119", "I10", "E785", "N183", "I509", "J449", "F329", "M1990", "E669", "Z79899",
          "K219", "G4733")  # fmt: skip
    lines = (
        ClaimLine("99605", 10000, 1, DOS, (), (1, 2, 3, 4)),
        ClaimLine("99607", 5000, 2, DOS, (), (9, 10, 11, 12)),
    )
    text = build([claim(diagnoses=dx, lines=lines)])
    assert_valid(text)
    _, segs = tokenize(text)
    (hi,) = [s for s in segs if s[0] == "HI"]
    assert hi[1] == "ABK:E119"
    assert hi[12] == "ABF:G4733"
    assert len(hi) == 13
    assert ["SV1", "HC:99607", "50", "UN", "2", "", "", "9:10:11:12"] in segs
    with pytest.raises(Claim837Error, match="1-12 diagnoses"):
        build([claim(diagnoses=(*dx, "R51"))])
    with pytest.raises(Claim837Error, match="1-4 diagnosis pointers"):
        build(
            [claim(diagnoses=dx, lines=(ClaimLine("99605", 15000, 1, DOS, (), (1, 2, 3, 4, 5)),))]
        )
    with pytest.raises(Claim837Error, match="pointer 3 outside"):
        build([claim(lines=(ClaimLine("99605", 15000, 1, DOS, (), (3,)),))])


def test_clm02_must_equal_sum_of_sv102() -> None:
    with pytest.raises(Claim837Error, match=re.escape("CLM02 150.01 != sum of SV102 150")):
        build([claim(total_cents=15001)])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"diagnoses": ("E11.9",)}, "without dots"),
        ({"billing_provider": replace(PHARMACY, zip="12345")}, "ZIP\\+4"),
        ({"billing_provider": replace(PHARMACY, tin="12-3456789")}, "TIN"),
        ({"subscriber": replace(JOHN, sex="X")}, "sex"),
        ({"lines": (ClaimLine("99605", 15000, 0, DOS),)}, "units"),
    ],
)
def test_structural_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(Claim837Error, match=message):
        build([claim(**changes)])


def test_delimiters_in_data_are_rejected_with_location() -> None:
    with pytest.raises(X12WriteError, match=r"subscriber MEMBER123.*'DOE\*SMITH'"):
        build([claim(subscriber=replace(JOHN, last="DOE*SMITH"))])
    with pytest.raises(X12WriteError, match="claim PCN~1"):
        build([claim("PCN~1")])


def test_duplicate_patient_control_numbers_rejected() -> None:
    with pytest.raises(Claim837Error, match="duplicate"):
        build([claim("X"), claim("X")])


@pytest.mark.parametrize(
    ("delims", "line_break"),
    [
        (Delimiters("*", "~", ":", "^"), ""),
        (Delimiters("*", "~", ":", "^"), "\n"),
        (Delimiters("*", "~", ":", "^"), "\r\n"),
        (Delimiters("|", "\n", ">", "^"), ""),
        (Delimiters("^", "'", "\\", "{"), "\r\n"),
        (Delimiters("\x1d", "\x1c", "\x1f", "\x1e"), ""),
    ],
)
def test_round_trip_other_delimiters(delims: Delimiters, line_break: str) -> None:
    claims = [claim("A1"), claim("B1", subscriber=MARY, frequency_code="7", payer_icn="ICN9")]
    reference = tokenize(build(claims))[1]
    text = build(claims, delimiters=delims, line_break=line_break)
    got_delims, segs = tokenize(text)
    assert got_delims == delims
    swap = str.maketrans({":": delims.component, "^": delims.repetition})
    assert segs == [[e.translate(swap) for e in seg] for seg in reference]


def test_valid_with_line_breaks_and_other_delimiters() -> None:
    text = build([claim()], delimiters=Delimiters("|", "~", ">", "^"), line_break="\n")
    assert_valid(text)
