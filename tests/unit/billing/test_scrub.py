from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.identifiers import EntityType, npi_check_digit
from services.billing.domain.scrub import (
    EDITS,
    RULES,
    Address,
    ClaimDraft,
    ClaimLine,
    EditCode,
    FollowUp,
    PriorLine,
    ProviderRef,
    Severity,
    Subscriber,
    scrub,
)

TODAY = date(2025, 3, 10)
DOS = date(2025, 3, 3)


def npi(first9: str) -> str:
    return first9 + str(npi_check_digit(first9))


PHARMACY_NPI = npi("123456789")
PHARMACIST_NPI = npi("198765432")


def line(code: str = "99606", units: int = 1, charge: int = 7500, **kw: object) -> ClaimLine:
    values: dict[str, object] = {
        "procedure_code": code,
        "modifiers": (),
        "units": units,
        "charge_cents": charge,
        "date_of_service": DOS,
        "diagnosis_pointers": (1, 2),
    }
    values.update(kw)
    return ClaimLine(**values)  # type: ignore[arg-type]


BASE = ClaimDraft(
    patient_control_number="MTM-000123",
    patient_id="pat-1",
    billing_provider=ProviderRef(PHARMACY_NPI, EntityType.ORGANIZATION, "3336C0003X"),
    billing_tin="12-3456789",
    billing_address=Address("100 Main St", "Raleigh", "NC", "27601-1234"),
    rendering_provider=ProviderRef(PHARMACIST_NPI, EntityType.PERSON, "183500000X"),
    subscriber=Subscriber("W123456789", "Doe", "Jane", date(1950, 5, 17), "F"),
    date_of_service=DOS,
    coverage_from=date(2025, 1, 1),
    coverage_to=None,
    timely_filing_deadline=date(2025, 6, 1),
    place_of_service="01",
    diagnoses=("E11.9", "I10"),
    lines=(line(), line("99607", units=2, charge=5000, diagnosis_pointers=(1,))),
    total_charge_cents=12500,
    max_addon_units=3,
)

Mutation = Callable[[ClaimDraft], ClaimDraft]


def run(draft: ClaimDraft, prior: tuple[PriorLine, ...] = (), today: date = TODAY) -> set[EditCode]:
    return set(scrub(draft, prior, today).codes)


def test_clean_claim_passes_without_findings() -> None:
    result = scrub(BASE, (), TODAY)
    assert result.findings == ()
    assert result.passed


def test_every_edit_code_has_a_spec() -> None:
    assert set(EDITS) == set(EditCode)
    assert len({name for name, _ in RULES}) == len(RULES)


def with_lines(*lines: ClaimLine) -> Mutation:
    def mutate(d: ClaimDraft) -> ClaimDraft:
        return replace(d, lines=lines, total_charge_cents=sum(x.charge_cents for x in lines))

    return mutate


FAILING: list[tuple[str, Mutation, EditCode]] = [
    (
        "billing npi check digit",
        lambda d: replace(d, billing_provider=replace(d.billing_provider, npi="1234567890")),
        EditCode.BILLING_NPI_INVALID,
    ),
    (
        "billing npi starts with 3",
        lambda d: replace(
            d, billing_provider=replace(d.billing_provider, npi="3" + PHARMACY_NPI[1:])
        ),
        EditCode.BILLING_NPI_INVALID,
    ),
    (
        "billing declared as person",
        lambda d: replace(
            d, billing_provider=replace(d.billing_provider, entity_type=EntityType.PERSON)
        ),
        EditCode.BILLING_NPI_TYPE,
    ),
    (
        "rendering npi short",
        lambda d: replace(d, rendering_provider=replace(d.rendering_provider, npi="198765432")),
        EditCode.RENDERING_NPI_INVALID,
    ),
    (
        "rendering declared as organization",
        lambda d: replace(
            d, rendering_provider=replace(d.rendering_provider, entity_type=EntityType.ORGANIZATION)
        ),
        EditCode.RENDERING_NPI_TYPE,
    ),
    ("ssn as tin", lambda d: replace(d, billing_tin="123-45-6789"), EditCode.BILLING_TIN_INVALID),
    (
        "placeholder tin",
        lambda d: replace(d, billing_tin="000000000"),
        EditCode.BILLING_TIN_INVALID,
    ),
    (
        "billing taxonomy missing",
        lambda d: replace(d, billing_provider=replace(d.billing_provider, taxonomy="")),
        EditCode.TAXONOMY_MISSING,
    ),
    (
        "rendering taxonomy missing",
        lambda d: replace(d, rendering_provider=replace(d.rendering_provider, taxonomy=" ")),
        EditCode.TAXONOMY_MISSING,
    ),
    (
        "rendering taxonomy malformed",
        lambda d: replace(
            d, rendering_provider=replace(d.rendering_provider, taxonomy="1835000000")
        ),
        EditCode.TAXONOMY_INVALID,
    ),
    (
        "address street missing",
        lambda d: replace(d, billing_address=replace(d.billing_address, line1="")),
        EditCode.BILLING_ADDRESS_INCOMPLETE,
    ),
    (
        "address state invalid",
        lambda d: replace(d, billing_address=replace(d.billing_address, state="North Carolina")),
        EditCode.BILLING_ADDRESS_INCOMPLETE,
    ),
    (
        "address po box",
        lambda d: replace(d, billing_address=replace(d.billing_address, line1="P.O. Box 12")),
        EditCode.BILLING_ADDRESS_PO_BOX,
    ),
    (
        "zip five digits",
        lambda d: replace(d, billing_address=replace(d.billing_address, postal_code="27601")),
        EditCode.BILLING_ZIP_INVALID,
    ),
    (
        "member id blank",
        lambda d: replace(d, subscriber=replace(d.subscriber, member_id=" ")),
        EditCode.MEMBER_ID_MISSING,
    ),
    (
        "subscriber name missing",
        lambda d: replace(d, subscriber=replace(d.subscriber, last_name="")),
        EditCode.SUBSCRIBER_INCOMPLETE,
    ),
    (
        "subscriber birth date missing",
        lambda d: replace(d, subscriber=replace(d.subscriber, birth_date=None)),
        EditCode.SUBSCRIBER_INCOMPLETE,
    ),
    (
        "subscriber sex invalid",
        lambda d: replace(d, subscriber=replace(d.subscriber, sex="X")),
        EditCode.SUBSCRIBER_INCOMPLETE,
    ),
    (
        "born after service",
        lambda d: replace(d, subscriber=replace(d.subscriber, birth_date=DOS + timedelta(days=1))),
        EditCode.BIRTH_DATE_AFTER_SERVICE,
    ),
    ("pcn empty", lambda d: replace(d, patient_control_number=""), EditCode.PCN_INVALID),
    ("pcn too long", lambda d: replace(d, patient_control_number="A" * 21), EditCode.PCN_INVALID),
    ("pcn delimiter", lambda d: replace(d, patient_control_number="MTM*1"), EditCode.PCN_INVALID),
    ("pcn space", lambda d: replace(d, patient_control_number="MTM 1"), EditCode.PCN_INVALID),
    ("frequency 5", lambda d: replace(d, frequency_code="5"), EditCode.FREQUENCY_INVALID),
    (
        "replacement without icn",
        lambda d: replace(d, frequency_code="7"),
        EditCode.FREQUENCY_ICN_MISSING,
    ),
    (
        "void with blank icn",
        lambda d: replace(d, frequency_code="8", payer_icn=" "),
        EditCode.FREQUENCY_ICN_MISSING,
    ),
    (
        "original with icn",
        lambda d: replace(d, payer_icn="2025010100001"),
        EditCode.ICN_ON_ORIGINAL,
    ),
    ("unknown pos", lambda d: replace(d, place_of_service="77"), EditCode.POS_INVALID),
    (
        "pos 10 before it existed",
        lambda d: replace(
            with_lines(line(modifiers=("95",)))(d),
            place_of_service="10",
            date_of_service=date(2021, 6, 1),
            coverage_from=date(2021, 1, 1),
        ),
        EditCode.POS_INVALID,
    ),
    (
        "telehealth pos without modifier",
        lambda d: replace(d, place_of_service="10"),
        EditCode.POS_MODIFIER_MISMATCH,
    ),
    (
        "modifier 95 at the pharmacy",
        with_lines(line(modifiers=("95",))),
        EditCode.POS_MODIFIER_MISMATCH,
    ),
    ("no lines", lambda d: replace(d, lines=(), total_charge_cents=0), EditCode.NO_LINES),
    ("bad procedure code", with_lines(line(code="9960")), EditCode.PROCEDURE_CODE_INVALID),
    ("bad modifier", with_lines(line(modifiers=("9",))), EditCode.MODIFIER_INVALID),
    (
        "five modifiers",
        with_lines(line(modifiers=("U1", "U2", "U3", "U4", "U5"))),
        EditCode.MODIFIER_INVALID,
    ),
    (
        "line on another day",
        with_lines(line(date_of_service=DOS - timedelta(days=1))),
        EditCode.LINE_DOS_MISMATCH,
    ),
    (
        "service in the future",
        lambda d: with_lines(line(date_of_service=TODAY + timedelta(days=1)))(
            replace(d, date_of_service=TODAY + timedelta(days=1))
        ),
        EditCode.DOS_IN_FUTURE,
    ),
    (
        "before coverage",
        lambda d: replace(d, coverage_from=DOS + timedelta(days=1)),
        EditCode.DOS_OUTSIDE_COVERAGE,
    ),
    (
        "after coverage",
        lambda d: replace(d, coverage_to=DOS - timedelta(days=1)),
        EditCode.DOS_OUTSIDE_COVERAGE,
    ),
    (
        "filing deadline passed",
        lambda d: replace(d, timely_filing_deadline=TODAY - timedelta(days=1)),
        EditCode.TIMELY_FILING_EXPIRED,
    ),
    (
        "filing deadline in 14 days",
        lambda d: replace(d, timely_filing_deadline=TODAY + timedelta(days=14)),
        EditCode.TIMELY_FILING_NEAR,
    ),
    (
        "filing deadline today",
        lambda d: replace(d, timely_filing_deadline=TODAY),
        EditCode.TIMELY_FILING_NEAR,
    ),
    (
        "no diagnosis",
        lambda d: replace(with_lines(line(diagnosis_pointers=(1,)))(d), diagnoses=()),
        EditCode.DX_MISSING,
    ),
    (
        "thirteen diagnoses",
        lambda d: replace(
            d, diagnoses=(*tuple(f"E11.{i}" for i in range(10)), "I10", "I11.9", "Z79.4")
        ),
        EditCode.DX_TOO_MANY,
    ),
    ("diagnosis format", lambda d: replace(d, diagnoses=("E11.9", "250.00")), EditCode.DX_FORMAT),
    (
        "diagnosis repeated",
        lambda d: replace(d, diagnoses=("E11.9", "E119")),
        EditCode.DX_DUPLICATE,
    ),
    ("no pointer", with_lines(line(diagnosis_pointers=())), EditCode.POINTER_MISSING),
    (
        "five pointers",
        lambda d: replace(
            with_lines(line(diagnosis_pointers=(1, 2, 3, 4, 5)))(d),
            diagnoses=("E11.9", "I10", "E78.5", "Z79.4", "N18.3"),
        ),
        EditCode.POINTER_TOO_MANY,
    ),
    ("pointer 3 of 2", with_lines(line(diagnosis_pointers=(1, 3))), EditCode.POINTER_OUT_OF_RANGE),
    ("pointer 0", with_lines(line(diagnosis_pointers=(0,))), EditCode.POINTER_OUT_OF_RANGE),
    ("pointer repeated", with_lines(line(diagnosis_pointers=(1, 1))), EditCode.POINTER_REPEATED),
    (
        "zero units",
        with_lines(line(), line("99607", units=0, charge=2500)),
        EditCode.UNITS_NOT_POSITIVE,
    ),
    ("base code two units", with_lines(line(units=2)), EditCode.BASE_UNITS),
    (
        "99605 and 99606 same day",
        with_lines(line("99605"), line("99606")),
        EditCode.MULTIPLE_BASE_CODES,
    ),
    ("add-on alone", with_lines(line("99607", units=1, charge=2500)), EditCode.ADDON_WITHOUT_BASE),
    (
        "add-on on another day than base",
        with_lines(
            line(), line("99607", units=1, charge=2500, date_of_service=DOS - timedelta(days=1))
        ),
        EditCode.ADDON_WITHOUT_BASE,
    ),
    (
        "add-on over cap",
        with_lines(line(), line("99607", units=4, charge=10000)),
        EditCode.ADDON_UNITS_OVER_CAP,
    ),
    (
        "add-on over cap across lines",
        with_lines(
            line(),
            line("99607", units=2, charge=5000),
            line("99607", units=2, charge=5000, modifiers=("U1",)),
        ),
        EditCode.ADDON_UNITS_OVER_CAP,
    ),
    (
        "same line twice",
        with_lines(line(), line("99607", charge=2500), line("99607", charge=2500)),
        EditCode.DUPLICATE_LINE,
    ),
    ("zero charge", with_lines(line(charge=0)), EditCode.LINE_CHARGE_NOT_POSITIVE),
    (
        "total differs",
        lambda d: replace(d, total_charge_cents=12499),
        EditCode.TOTAL_CHARGE_MISMATCH,
    ),
]


@pytest.mark.parametrize(("name", "mutate", "code"), FAILING, ids=[f[0] for f in FAILING])
def test_each_edit_fires(name: str, mutate: Mutation, code: EditCode) -> None:
    result = scrub(mutate(BASE), (), TODAY)
    found = [f for f in result.findings if f.code is code]
    assert found, f"{name}: expected {code}, got {sorted(result.codes)}"
    spec = EDITS[code]
    assert all(f.severity is spec.severity and f.action is spec.action for f in found)
    assert all(f.message and f.field for f in found)
    assert result.passed is (spec.severity is Severity.WARNING and not result.errors)


def test_every_edit_code_is_exercised() -> None:
    exercised = {code for _, _, code in FAILING} | {EditCode.DUPLICATE_SERVICE}
    assert exercised == set(EditCode)


PASSING: list[tuple[str, Mutation]] = [
    ("hyphenless tin", lambda d: replace(d, billing_tin="123456789")),
    (
        "zip+4 without hyphen",
        lambda d: replace(d, billing_address=replace(d.billing_address, postal_code="276011234")),
    ),
    ("dos on coverage end", lambda d: replace(d, coverage_to=DOS)),
    ("dos on coverage start", lambda d: replace(d, coverage_from=DOS)),
    (
        "deadline in 15 days",
        lambda d: replace(d, timely_filing_deadline=TODAY + timedelta(days=15)),
    ),
    (
        "void after deadline",
        lambda d: replace(
            d,
            frequency_code="8",
            payer_icn="ICN1",
            timely_filing_deadline=TODAY - timedelta(days=30),
        ),
    ),
    ("replacement with icn", lambda d: replace(d, frequency_code="7", payer_icn="ICN1")),
    (
        "twelve diagnoses, four pointers",
        lambda d: replace(
            with_lines(line(diagnosis_pointers=(12, 11, 10, 9)))(d),
            diagnoses=(*tuple(f"E11.{i}" for i in range(10)), "I10", "Z79.4"),
        ),
    ),
    ("base alone", with_lines(line("99605"))),
    ("add-on at cap", with_lines(line(), line("99607", units=3, charge=7500))),
    (
        "no payer cap",
        lambda d: replace(
            with_lines(line(), line("99607", units=9, charge=22500))(d), max_addon_units=None
        ),
    ),
    (
        "telehealth at home with 95",
        lambda d: replace(
            with_lines(line(modifiers=("95",)), line("99607", charge=2500, modifiers=("95",)))(d),
            place_of_service="10",
        ),
    ),
    ("u code diagnosis", lambda d: replace(d, diagnoses=("U09.9", "I10"))),
    ("pcn of twenty", lambda d: replace(d, patient_control_number="A-" + "9" * 18)),
]


@pytest.mark.parametrize(("name", "mutate"), PASSING, ids=[p[0] for p in PASSING])
def test_edge_cases_pass(name: str, mutate: Mutation) -> None:
    result = scrub(mutate(BASE), (), TODAY)
    assert result.findings == (), f"{name}: {[(f.code, f.message) for f in result.findings]}"


def prior(status: ClaimStatus, **kw: object) -> PriorLine:
    values: dict[str, object] = {
        "patient_id": "pat-1",
        "procedure_code": "99606",
        "date_of_service": DOS,
        "claim_status": status,
        "patient_control_number": "MTM-000100",
        "payer_icn": "ICN-OLD",
    }
    values.update(kw)
    return PriorLine(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "status",
    [
        ClaimStatus.SUBMITTED,
        ClaimStatus.PAID,
        ClaimStatus.DENIED,
        ClaimStatus.READY,
        ClaimStatus.CLOSED,
    ],
)
def test_duplicate_service_is_an_error(status: ClaimStatus) -> None:
    result = scrub(BASE, (prior(status),), TODAY)
    duplicates = [f for f in result.findings if f.code is EditCode.DUPLICATE_SERVICE]
    assert len(duplicates) == 1
    assert duplicates[0].action is FollowUp.REVIEW_DUPLICATE
    assert duplicates[0].field == "lines[0]"
    assert not result.passed


@pytest.mark.parametrize(
    "status",
    [ClaimStatus.VOIDED, ClaimStatus.REPLACED, ClaimStatus.REJECTED, ClaimStatus.NOT_BILLABLE],
)
def test_lines_that_never_stood_are_not_duplicates(status: ClaimStatus) -> None:
    assert EditCode.DUPLICATE_SERVICE not in run(BASE, (prior(status),))


@pytest.mark.parametrize(
    "other",
    [
        {"patient_id": "pat-2"},
        {"procedure_code": "99605"},
        {"date_of_service": DOS - timedelta(days=7)},
        {"patient_control_number": "MTM-000123"},  # the claim itself
    ],
)
def test_different_service_or_same_claim_is_not_a_duplicate(other: dict[str, object]) -> None:
    assert EditCode.DUPLICATE_SERVICE not in run(BASE, (prior(ClaimStatus.PAID, **other),))


def test_a_closed_claim_billed_to_another_payer_is_not_a_duplicate() -> None:
    """The work queue's "bill another payer" closed the denied claim and another claim was
    rebilled from it: the service stands on that new claim, not on the closed one."""
    assert EditCode.DUPLICATE_SERVICE not in run(BASE, (prior(ClaimStatus.CLOSED, rebilled=True),))


@pytest.mark.parametrize(
    "status",
    [ClaimStatus.PAID, ClaimStatus.PARTIALLY_PAID, ClaimStatus.DENIED, ClaimStatus.APPEALED],
)
def test_a_rebilled_claim_that_left_closed_stands_again(status: ClaimStatus) -> None:
    """Re-adjudicated by its payer (remit after closing) or appealed: it stands again, so a
    claim for the same service elsewhere is a duplicate."""
    assert EditCode.DUPLICATE_SERVICE in run(BASE, (prior(status, rebilled=True),))


def test_a_genuine_second_claim_is_still_a_duplicate_next_to_a_rebill_chain() -> None:
    """The closed original does not stand, but the claim rebilled from it does: a second claim
    for the same service is flagged, naming the standing claim only."""
    original = prior(ClaimStatus.CLOSED, rebilled=True, patient_control_number="MTM-000100")
    rebilled = prior(ClaimStatus.READY, patient_control_number="MTM-000101", payer_icn=None)
    result = scrub(BASE, (original, rebilled), TODAY)
    duplicates = [f for f in result.findings if f.code is EditCode.DUPLICATE_SERVICE]
    assert len(duplicates) == 1
    assert "MTM-000101" in duplicates[0].message
    assert "MTM-000100" not in duplicates[0].message
    assert not result.passed
    # a closed claim nothing was rebilled from (closed after payment, billed to the patient)
    assert EditCode.DUPLICATE_SERVICE in run(BASE, (prior(ClaimStatus.CLOSED),))


def test_a_replacement_of_a_rebilled_claim_skips_both_the_closed_original_and_itself() -> None:
    """Correct-and-resubmit of the other payer's denied claim: the frequency 7 claim is not a
    duplicate of the closed original (rebilled from) nor of the claim it corrects (its ICN)."""
    original = prior(ClaimStatus.CLOSED, rebilled=True, payer_icn="ICN-A")
    denied = prior(ClaimStatus.DENIED, patient_control_number="MTM-000101", payer_icn="ICN-B")
    replacement = replace(
        BASE, frequency_code="7", payer_icn="ICN-B", patient_control_number="MTM-000124"
    )
    assert EditCode.DUPLICATE_SERVICE not in run(replacement, (original, denied))
    unlinked = prior(ClaimStatus.CLOSED, payer_icn="ICN-A")
    assert EditCode.DUPLICATE_SERVICE in run(replacement, (unlinked, denied))


def test_replacement_is_not_a_duplicate_of_the_claim_it_corrects() -> None:
    replacement = replace(
        BASE, frequency_code="7", payer_icn="ICN-OLD", patient_control_number="MTM-000124"
    )
    assert EditCode.DUPLICATE_SERVICE not in run(replacement, (prior(ClaimStatus.DENIED),))
    other_icn = replace(replacement, payer_icn="ICN-OTHER")
    assert EditCode.DUPLICATE_SERVICE in run(other_icn, (prior(ClaimStatus.DENIED),))


def test_warning_lets_the_claim_proceed() -> None:
    result = scrub(replace(BASE, timely_filing_deadline=TODAY + timedelta(days=3)), (), TODAY)
    assert result.passed
    assert [f.code for f in result.warnings] == [EditCode.TIMELY_FILING_NEAR]
    assert result.errors == ()


def test_all_findings_are_collected() -> None:
    broken = replace(
        BASE,
        billing_tin="123-45-6789",
        subscriber=replace(BASE.subscriber, member_id=""),
        total_charge_cents=1,
    )
    result = scrub(broken, (), TODAY)
    assert {
        EditCode.BILLING_TIN_INVALID,
        EditCode.MEMBER_ID_MISSING,
        EditCode.TOTAL_CHARGE_MISMATCH,
    } <= result.codes
    assert not result.passed
    assert len(result.errors) == 3
