"""835 Health Care Claim Payment/Advice (005010X221A1): parse, balance-check and build.

This module reads structure and checks the three TR3 balancing equations; it makes no
posting or status decisions. All money is integer cents (``shared.money.Cents``).

Balancing (TR3 1.10.2.1):

* line: ``SVC02 - sum(line CAS) = SVC03``
* claim: ``CLP03 - sum(claim CAS + line CAS) = CLP04``
* transaction: ``BPR02 = sum(CLP04) - sum(PLB amounts)``; a positive PLB amount reduces
  the payment, and ``BPR03 = D`` (debit) makes BPR02 negative.

Reversals (``CLP02 = 22``) carry negated amounts and balance with the same equations.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from shared.money import AmountError, Cents, format_x12_amount, parse_x12_amount
from shared.x12.dates import format_d8
from shared.x12.envelope import ControlNumbers, EnvelopeWriter, Parties
from shared.x12.tokenizer import (
    Delimiters,
    FunctionalGroup,
    Interchange,
    TransactionSet,
    X12SyntaxError,
    iter_transactions,
    tokenize,
)
from shared.x12.writer import DEFAULT_DELIMITERS, Element, X12Writer

__all__ = [
    "IMPLEMENTATION_GUIDE",
    "Address",
    "Adjustment",
    "BalanceError",
    "BankAccounts",
    "ClaimPayment",
    "ProviderAdjustment",
    "Remittance",
    "ServiceLine",
    "build_835",
    "check_balance",
    "parse_835",
]

IMPLEMENTATION_GUIDE = "005010X221A1"

# CAS carries up to six reason/amount/quantity triples in CAS02..CAS19.
_CAS_MAX_TRIPLES = 6
# PLB carries up to six reason/amount pairs in PLB03..PLB14.
_PLB_MAX_PAIRS = 6


@dataclass(slots=True)
class Adjustment:
    """One CAS reason/amount/quantity triple. ``group`` is CO, PR, OA or PI."""

    group: str
    carc: str
    amount: Cents
    quantity: Decimal | None = None


@dataclass(slots=True)
class ServiceLine:
    """Loop 2110: one SVC with its dates, adjustments, allowed amount and remarks."""

    code: str
    charge: Cents
    paid: Cents
    qualifier: str = "HC"
    modifiers: tuple[str, ...] = ()
    revenue_code: str = ""
    units: Decimal = Decimal(1)
    original_code: str | None = None  # SVC06-2 when the payer adjudicated another code
    original_modifiers: tuple[str, ...] = ()
    original_units: Decimal | None = None  # SVC07
    service_date: date | None = None  # DTM*472
    service_from: date | None = None  # DTM*150
    service_to: date | None = None  # DTM*151
    adjustments: list[Adjustment] = field(default_factory=list)
    allowed: Cents | None = None  # AMT*B6
    remark_codes: list[str] = field(default_factory=list)  # LQ*HE
    control_number: str | None = None  # REF*6R line item control number


@dataclass(slots=True)
class ClaimPayment:
    """Loop 2100: one CLP with the patient, claim-level adjustments and service lines."""

    patient_control_number: str  # CLP01 = 837 CLM01
    status: str  # CLP02: 1/2/3 processed, 4 denied, 19/20/21, 22 reversal, 23
    charge: Cents  # CLP03
    paid: Cents  # CLP04
    patient_responsibility: Cents = 0  # CLP05 (0 when absent)
    filing_indicator: str = ""  # CLP06
    payer_icn: str = ""  # CLP07 payer claim control number
    facility_code: str = ""  # CLP08
    frequency: str = ""  # CLP09
    patient_last: str = ""  # NM1*QC
    patient_first: str = ""
    member_id: str = ""  # NM1*QC NM109
    member_id_qualifier: str = ""  # NM108
    adjustments: list[Adjustment] = field(default_factory=list)
    lines: list[ServiceLine] = field(default_factory=list)
    statement_from: date | None = None  # DTM*232
    statement_to: date | None = None  # DTM*233
    received_date: date | None = None  # DTM*050
    amounts: dict[str, Cents] = field(default_factory=dict)  # AMT qualifier -> cents


@dataclass(slots=True)
class ProviderAdjustment:
    """One PLB reason/amount pair. A positive amount reduces the payment."""

    provider_id: str  # PLB01
    fiscal_period_date: date  # PLB02
    reason: str  # PLB03-1: WO, FB, CT, L6, 72, CS, ...
    amount: Cents
    reference: str = ""  # PLB03-2


@dataclass(slots=True)
class Address:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str = ""


@dataclass(slots=True)
class BankAccounts:
    """BPR05..BPR15 for ACH/FWT payments (DFI ids are routing numbers, qualifier 01)."""

    payment_format: str  # BPR05: CCP or CTX
    sender_dfi_id: str  # BPR07
    sender_account: str  # BPR09
    originating_company_id: str  # BPR10
    receiver_dfi_id: str  # BPR13
    receiver_account: str  # BPR15
    sender_account_qualifier: str = "DA"  # BPR08
    receiver_account_qualifier: str = "DA"  # BPR14


@dataclass(slots=True)
class Remittance:
    """One 835 transaction set (ST..SE)."""

    handling_code: str  # BPR01: C payment+advice, I advice only, H notification, ...
    paid_amount: Cents  # BPR02 as sent (non-negative); see ``net_payment``
    credit_debit: str  # BPR03: C or D
    payment_method: str  # BPR04: ACH, CHK, BOP, FWT, NON
    payment_date: date | None  # BPR16
    trace_number: str  # TRN02 (check or EFT trace number)
    trace_originator_id: str  # TRN03
    payer_name: str  # N1*PR
    payee_name: str  # N1*PE
    payer_id: str = ""  # N1*PR N104, else REF*2U
    payee_id_qualifier: str = ""  # N1*PE N103: XX (NPI), FI (TIN), XV
    payee_id: str = ""  # N1*PE N104
    payee_tax_id: str = ""  # REF*TJ (or N104 when N103 = FI)
    payer_address: Address | None = None
    payer_contact_name: str = ""  # PER*BL
    payer_contact_phone: str = ""
    production_date: date | None = None  # DTM*405
    bank: BankAccounts | None = None
    claims: list[ClaimPayment] = field(default_factory=list)
    plb: list[ProviderAdjustment] = field(default_factory=list)
    transaction_control_number: str = ""  # ST02
    group_control_number: str = ""  # GS06
    interchange_control_number: str = ""  # ISA13

    @property
    def payee_npi(self) -> str | None:
        return self.payee_id if self.payee_id_qualifier == "XX" else None

    @property
    def net_payment(self) -> Cents:
        """BPR02 signed: negative when BPR03 is D (the provider is debited)."""
        return -self.paid_amount if self.credit_debit == "D" else self.paid_amount


@dataclass(frozen=True, slots=True)
class BalanceError:
    level: Literal["line", "claim", "file"]
    pcn: str | None  # CLP01 of the claim, None at file level
    claim_index: int | None  # position in ``Remittance.claims``
    line_index: int | None  # position in ``ClaimPayment.lines``
    expected: Cents
    actual: Cents
    message: str

    @property
    def where(self) -> tuple[str | None, int | None]:
        return self.pcn, self.line_index


# --------------------------------------------------------------------------- parsing

# Amounts, dates and quantities repeat heavily in a remittance (fee schedules, one check
# date, the same dates of service), so parsed values are memoised in bounded caches.
_CACHE_LIMIT = 65_536
_AMOUNTS: dict[str, Cents] = {}
_DATES: dict[str, date] = {}
_NUMBERS: dict[str, Decimal] = {}


def _parse_cents(text: str) -> Cents:
    """Plain ``-?digits[.d[d]]`` exactly; anything else goes through shared.money."""
    whole, _, frac = text.partition(".")
    neg = whole[:1] == "-"
    if neg:
        whole = whole[1:]
    if (
        len(frac) <= 2
        and (whole.isdecimal() or (not whole and frac))
        and (not frac or frac.isdecimal())
        and text.isascii()
    ):
        value = int(whole or "0") * 100 + (int(frac) * (10 if len(frac) == 1 else 1) if frac else 0)
        return -value if neg else value
    return parse_x12_amount(text)


def _cents(text: str) -> Cents:
    value = _AMOUNTS.get(text)
    if value is None:
        value = _parse_cents(text)
        if len(_AMOUNTS) < _CACHE_LIMIT:
            _AMOUNTS[text] = value
    return value


def _date(text: str) -> date:
    value = _DATES.get(text)
    if value is None:
        if len(text) != 8 or not text.isdecimal() or not text.isascii():
            raise ValueError(f"not a CCYYMMDD date: {text!r}")
        value = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        if len(_DATES) < _CACHE_LIMIT:
            _DATES[text] = value
    return value


def _decimal(text: str) -> Decimal:
    value = _NUMBERS.get(text)
    if value is None:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(f"not a number: {text!r}")
        if len(_NUMBERS) < _CACHE_LIMIT:
            _NUMBERS[text] = value
    return value


_ONE = Decimal(1)


def _opt(seg: list[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _cas(seg: list[str]) -> list[Adjustment]:
    group = seg[1]
    out: list[Adjustment] = []
    n = len(seg)
    for pos in range(2, min(n, 2 + 3 * _CAS_MAX_TRIPLES), 3):
        reason = seg[pos]
        if not reason:
            continue
        qty = seg[pos + 2] if n > pos + 2 else ""
        out.append(Adjustment(group, reason, _cents(seg[pos + 1]), _decimal(qty) if qty else None))
    if not out:
        raise ValueError("CAS without a reason code")
    return out


def _svc(seg: list[str], component: str) -> ServiceLine:
    qualifier, _, rest = seg[1].partition(component)
    modifiers: tuple[str, ...] = ()
    if component in rest:
        parts = rest.split(component)
        rest = parts[0]
        modifiers = tuple(m for m in parts[1:5] if m)
    n = len(seg)
    units = seg[5] if n > 5 else ""
    line = ServiceLine(
        rest,
        _cents(seg[2]),
        _cents(seg[3]),
        qualifier,
        modifiers,
        seg[4] if n > 4 else "",
        _decimal(units) if units else _ONE,
    )
    if not rest:
        raise ValueError("SVC01 has no procedure code")
    if n > 6:
        if seg[6]:
            orig = seg[6].split(component)
            line.original_code = orig[1]
            line.original_modifiers = tuple(m for m in orig[2:6] if m)
        if n > 7 and seg[7]:
            line.original_units = _decimal(seg[7])
    return line


def _clp(seg: list[str]) -> ClaimPayment:
    n = len(seg)
    if n >= 10:
        pr = seg[5]
        return ClaimPayment(
            seg[1],
            seg[2],
            _cents(seg[3]),
            _cents(seg[4]),
            _cents(pr) if pr else 0,
            seg[6],
            seg[7],
            seg[8],
            seg[9],
        )
    pr = seg[5] if n > 5 else ""
    return ClaimPayment(
        seg[1],
        seg[2],
        _cents(seg[3]),
        _cents(seg[4]),
        _cents(pr) if pr else 0,
        seg[6] if n > 6 else "",
        seg[7] if n > 7 else "",
        seg[8] if n > 8 else "",
        seg[9] if n > 9 else "",
    )


def _plb(seg: list[str], component: str) -> list[ProviderAdjustment]:
    provider = seg[1]
    fiscal = _date(seg[2])
    out: list[ProviderAdjustment] = []
    n = len(seg)
    for pos in range(3, min(n, 3 + 2 * _PLB_MAX_PAIRS), 2):
        if not seg[pos]:
            continue
        reason, _, ref = seg[pos].partition(component)
        out.append(ProviderAdjustment(provider, fiscal, reason, _cents(seg[pos + 1]), ref))
    if not out:
        raise ValueError("PLB without an adjustment")
    return out


def _header(remit: Remittance, seg: list[str], n1: str) -> None:
    """Segments before the first LX/CLP (BPR, TRN, DTM*405, 1000A/1000B)."""
    sid = seg[0]
    if sid == "BPR":
        remit.handling_code = seg[1]
        remit.paid_amount = _cents(seg[2])
        remit.credit_debit = seg[3]
        remit.payment_method = seg[4]
        paid_on = _opt(seg, 16)
        remit.payment_date = _date(paid_on) if paid_on else None
        if _opt(seg, 7):
            remit.bank = BankAccounts(
                payment_format=_opt(seg, 5),
                sender_dfi_id=seg[7],
                sender_account_qualifier=_opt(seg, 8),
                sender_account=_opt(seg, 9),
                originating_company_id=_opt(seg, 10),
                receiver_dfi_id=_opt(seg, 13),
                receiver_account_qualifier=_opt(seg, 14),
                receiver_account=_opt(seg, 15),
            )
    elif sid == "TRN":
        remit.trace_number = seg[2]
        remit.trace_originator_id = seg[3]
    elif sid == "DTM":
        if seg[1] == "405":
            remit.production_date = _date(seg[2])
    elif sid == "N1":
        if n1 == "PR":
            remit.payer_name = _opt(seg, 2)
            if _opt(seg, 4):
                remit.payer_id = seg[4]
        elif n1 == "PE":
            remit.payee_name = _opt(seg, 2)
            remit.payee_id_qualifier = _opt(seg, 3)
            remit.payee_id = _opt(seg, 4)
            if remit.payee_id_qualifier == "FI":
                remit.payee_tax_id = remit.payee_id
    elif sid == "REF":
        if n1 == "PE" and seg[1] == "TJ":
            remit.payee_tax_id = seg[2]
        elif n1 == "PR" and seg[1] == "2U" and not remit.payer_id:
            remit.payer_id = seg[2]
    elif sid == "N3":
        if n1 == "PR":
            remit.payer_address = Address(seg[1], "", "", "", _opt(seg, 2))
    elif sid == "N4":
        if n1 == "PR" and remit.payer_address is not None:
            remit.payer_address.city = seg[1]
            remit.payer_address.state = _opt(seg, 2)
            remit.payer_address.postal_code = _opt(seg, 3)
    elif sid == "PER" and n1 == "PR" and seg[1] == "BL":
        remit.payer_contact_name = _opt(seg, 2)
        remit.payer_contact_phone = _opt(seg, 4)


def _parse_transaction(
    tset: TransactionSet,
    group: FunctionalGroup,
    interchange: Interchange,
    component: str,
) -> Remittance:
    segments = tset.segments
    st = segments[0]
    if st[1] != "835":
        raise X12SyntaxError(
            f"expected an 835, found ST01 {st[1]!r}", segment_index=tset.start_index
        )
    version = _opt(st, 3) or group.version
    if not version.startswith("005010X221"):
        raise X12SyntaxError(
            f"unsupported 835 version {version!r} (need {IMPLEMENTATION_GUIDE})",
            segment_index=tset.start_index,
        )
    remit = Remittance(
        handling_code="",
        paid_amount=0,
        credit_debit="",
        payment_method="",
        payment_date=None,
        trace_number="",
        trace_originator_id="",
        payer_name="",
        payee_name="",
        transaction_control_number=st[2],
        group_control_number=group.control_number,
        interchange_control_number=interchange.control_number,
    )
    claims = remit.claims
    claim: ClaimPayment | None = None
    line: ServiceLine | None = None
    in_header = True
    n1 = ""  # entity of the current 1000 loop (PR / PE)
    amounts = _AMOUNTS
    pos = 0
    try:
        for pos in range(1, len(segments) - 1):
            seg = segments[pos]
            sid = seg[0]
            if sid == "CAS":
                if line is not None:
                    target = line.adjustments
                elif claim is not None:
                    target = claim.adjustments
                else:
                    raise ValueError("CAS outside a claim")
                if len(seg) == 4 and seg[2]:  # the common single-triple CAS
                    cents = amounts.get(seg[3])
                    if cents is None:
                        cents = _cents(seg[3])
                    target.append(Adjustment(seg[1], seg[2], cents))
                else:
                    target.extend(_cas(seg))
            elif sid == "DTM":
                qual = seg[1]
                if line is not None:
                    if qual == "472":
                        line.service_date = _date(seg[2])
                    elif qual == "150":
                        line.service_from = _date(seg[2])
                    elif qual == "151":
                        line.service_to = _date(seg[2])
                elif claim is not None:
                    if qual == "232":
                        claim.statement_from = _date(seg[2])
                    elif qual == "233":
                        claim.statement_to = _date(seg[2])
                    elif qual == "050":
                        claim.received_date = _date(seg[2])
                elif in_header:
                    _header(remit, seg, n1)
            elif sid == "SVC":
                if claim is None:
                    raise ValueError("SVC outside a claim")
                line = _svc(seg, component)
                claim.lines.append(line)
            elif sid == "AMT":
                if line is not None:
                    if seg[1] == "B6":
                        line.allowed = _cents(seg[2])
                elif claim is not None:
                    claim.amounts[seg[1]] = _cents(seg[2])
            elif sid == "CLP":
                claim = _clp(seg)
                claims.append(claim)
                line = None
                in_header = False
            elif sid == "NM1":
                if claim is not None and line is None and seg[1] == "QC":
                    claim.patient_last = _opt(seg, 3)
                    claim.patient_first = _opt(seg, 4)
                    claim.member_id_qualifier = _opt(seg, 8)
                    claim.member_id = _opt(seg, 9)
            elif sid == "LQ":
                if line is not None and seg[1] == "HE":
                    line.remark_codes.append(seg[2])
            elif sid == "REF":
                if line is not None:
                    if seg[1] == "6R":
                        line.control_number = seg[2]
                elif in_header:
                    _header(remit, seg, n1)
            elif sid == "LX":
                claim = line = None
                in_header = False
            elif sid == "PLB":
                claim = line = None
                in_header = False
                remit.plb.extend(_plb(seg, component))
            elif in_header:
                if sid == "N1":
                    n1 = seg[1]
                _header(remit, seg, n1)
    except (IndexError, ValueError, AmountError, InvalidOperation) as exc:
        raise X12SyntaxError(
            f"malformed {segments[pos][0]} segment: {exc}", segment_index=tset.start_index + pos
        ) from exc
    if not remit.handling_code or not remit.trace_number:
        raise X12SyntaxError(
            "835 transaction is missing BPR or TRN", segment_index=tset.start_index
        )
    return remit


def parse_835(data: str | bytes) -> list[Remittance]:
    """Parse every 835 transaction set in an interchange (one Remittance per ST..SE).

    Envelope counts and control numbers are checked; malformed segments raise
    ``X12SyntaxError`` naming the segment index.
    """
    # Hundreds of thousands of small acyclic lists and records are allocated here; pausing
    # the cyclic collector for the call halves the run time (it is restored afterwards).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        delims, segments = tokenize(data)
        return [
            _parse_transaction(tset, group, interchange, delims.component)
            for interchange, group, tset in iter_transactions(segments)
        ]
    finally:
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------- balancing


def _dupes(claim: ClaimPayment) -> list[Adjustment]:
    keys = {(a.group, a.carc, a.amount) for line in claim.lines for a in line.adjustments}
    return [a for a in claim.adjustments if (a.group, a.carc, a.amount) in keys]


def check_balance(remittance: Remittance) -> list[BalanceError]:
    """Check the line, claim and transaction ("file") balancing equations.

    An adjustment repeated at claim and line level is only called out when the claim
    is out of balance and dropping the claim-level copies would balance it.
    """
    errors: list[BalanceError] = []
    total_paid = 0
    for ci, claim in enumerate(remittance.claims):
        pcn = claim.patient_control_number
        adjusted = 0
        for adj in claim.adjustments:
            adjusted += adj.amount
        for li, line in enumerate(claim.lines):
            line_adj = 0
            for adj in line.adjustments:
                line_adj += adj.amount
            adjusted += line_adj
            if line.charge - line_adj != line.paid:
                errors.append(
                    BalanceError(
                        "line",
                        pcn,
                        ci,
                        li,
                        expected=line.charge - line_adj,
                        actual=line.paid,
                        message=(
                            f"claim {pcn!r} line {li + 1} ({line.code}): charge "
                            f"{line.charge} - adjustments {line_adj} != paid {line.paid}"
                        ),
                    )
                )
        if claim.charge - adjusted != claim.paid:
            message = (
                f"claim {pcn!r}: charge {claim.charge} - adjustments {adjusted} "
                f"!= paid {claim.paid}"
            )
            dupes = _dupes(claim)
            if dupes and claim.charge - adjusted + sum(a.amount for a in dupes) == claim.paid:
                listed = ", ".join(f"{a.group}-{a.carc} {a.amount}" for a in dupes)
                message += f"; adjustments reported at both claim and line level: {listed}"
            errors.append(
                BalanceError("claim", pcn, ci, None, claim.charge - adjusted, claim.paid, message)
            )
        total_paid += claim.paid
    plb_total = 0
    for plb in remittance.plb:
        plb_total += plb.amount
    expected = total_paid - plb_total
    if remittance.net_payment != expected:
        errors.append(
            BalanceError(
                "file",
                None,
                None,
                None,
                expected=expected,
                actual=remittance.net_payment,
                message=(
                    f"BPR02 {remittance.net_payment} != claims paid {total_paid} "
                    f"- provider adjustments {plb_total}"
                ),
            )
        )
    return errors


# --------------------------------------------------------------------------- building


def _num(value: Decimal) -> str:
    return format(value, "f")


def _write_transaction(env: EnvelopeWriter, remit: Remittance) -> None:
    w = env.w
    amt = format_x12_amount
    env.open_set("835", None)  # ST03 is "Not Used" in X221A1
    bank = remit.bank
    banking: list[Element] = [None] * 11
    if bank is not None:
        banking = [
            bank.payment_format,
            "01",
            bank.sender_dfi_id,
            bank.sender_account_qualifier,
            bank.sender_account,
            bank.originating_company_id,
            None,
            "01",
            bank.receiver_dfi_id,
            bank.receiver_account_qualifier,
            bank.receiver_account,
        ]
    w.seg(
        "BPR",
        remit.handling_code,
        amt(remit.paid_amount),
        remit.credit_debit,
        remit.payment_method,
        *banking,
        format_d8(remit.payment_date) if remit.payment_date else None,
    )
    w.seg("TRN", "1", remit.trace_number, remit.trace_originator_id)
    if remit.production_date is not None:
        w.seg("DTM", "405", format_d8(remit.production_date))
    addr = remit.payer_address
    if addr is None or not remit.payer_contact_phone:
        raise ValueError("an 835 needs the payer address (N3/N4) and the PER*BL phone")
    w.seg("N1", "PR", remit.payer_name)
    w.seg("N3", addr.line1, addr.line2)
    w.seg("N4", addr.city, addr.state, addr.postal_code)
    if remit.payer_id:
        w.seg("REF", "2U", remit.payer_id)
    w.seg("PER", "BL", remit.payer_contact_name, "TE", remit.payer_contact_phone)
    w.seg("N1", "PE", remit.payee_name, remit.payee_id_qualifier, remit.payee_id)
    if remit.payee_tax_id and remit.payee_id_qualifier != "FI":
        w.seg("REF", "TJ", remit.payee_tax_id)
    if remit.claims:
        w.seg("LX", "1")
    for claim in remit.claims:
        _write_claim(w, claim)
    _write_plb(w, remit.plb)
    env.close_set()


def _write_claim(w: X12Writer, claim: ClaimPayment) -> None:
    amt = format_x12_amount
    w.seg(
        "CLP",
        claim.patient_control_number,
        claim.status,
        amt(claim.charge),
        amt(claim.paid),
        amt(claim.patient_responsibility) if claim.patient_responsibility else None,
        claim.filing_indicator,
        claim.payer_icn,
        claim.facility_code,
        claim.frequency,
    )
    _write_cas(w, claim.adjustments)
    w.seg(
        "NM1",
        "QC",
        "1",
        claim.patient_last,
        claim.patient_first,
        None,
        None,
        None,
        claim.member_id_qualifier or ("MI" if claim.member_id else None),
        claim.member_id,
    )
    for qual, when in (
        ("050", claim.received_date),
        ("232", claim.statement_from),
        ("233", claim.statement_to),
    ):
        if when is not None:
            w.seg("DTM", qual, format_d8(when))
    for qual, cents in claim.amounts.items():
        w.seg("AMT", qual, amt(cents))
    for line in claim.lines:
        original: list[Element] = []
        if line.original_code is not None:
            original = [(line.qualifier, line.original_code, *line.original_modifiers)]
            if line.original_units is not None:
                original.append(_num(line.original_units))
        w.seg(
            "SVC",
            (line.qualifier, line.code, *line.modifiers),
            amt(line.charge),
            amt(line.paid),
            line.revenue_code,
            _num(line.units),
            *original,
        )
        for qual, when in (
            ("472", line.service_date),
            ("150", line.service_from),
            ("151", line.service_to),
        ):
            if when is not None:
                w.seg("DTM", qual, format_d8(when))
        _write_cas(w, line.adjustments)
        if line.control_number:
            w.seg("REF", "6R", line.control_number)
        if line.allowed is not None:
            w.seg("AMT", "B6", amt(line.allowed))
        for code in line.remark_codes:
            w.seg("LQ", "HE", code)


def _write_cas(w: X12Writer, adjustments: Sequence[Adjustment]) -> None:
    by_group: dict[str, list[Adjustment]] = {}
    for adj in adjustments:
        by_group.setdefault(adj.group, []).append(adj)
    for group, adjs in by_group.items():
        for start in range(0, len(adjs), _CAS_MAX_TRIPLES):
            triples: list[Element] = []
            for adj in adjs[start : start + _CAS_MAX_TRIPLES]:
                qty = _num(adj.quantity) if adj.quantity is not None else None
                triples += [adj.carc, format_x12_amount(adj.amount), qty]
            w.seg("CAS", group, *triples)


def _write_plb(w: X12Writer, adjustments: Sequence[ProviderAdjustment]) -> None:
    by_key: dict[tuple[str, date], list[ProviderAdjustment]] = {}
    for adj in adjustments:
        by_key.setdefault((adj.provider_id, adj.fiscal_period_date), []).append(adj)
    for (provider, fiscal), adjs in by_key.items():
        for start in range(0, len(adjs), _PLB_MAX_PAIRS):
            pairs: list[Element] = []
            for adj in adjs[start : start + _PLB_MAX_PAIRS]:
                pairs += [(adj.reason, adj.reference), format_x12_amount(adj.amount)]
            w.seg("PLB", provider, format_d8(fiscal), *pairs)


def build_835(
    remittances: Sequence[Remittance],
    *,
    parties: Parties,
    control: ControlNumbers,
    created_at: datetime,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
) -> str:
    """Write ``remittances`` as one interchange with one HP group and one ST..SE each.

    The remittances' own control-number fields are ignored: ST02 counts up from
    ``control.st02_start``. Trailer counts are computed. Data containing a delimiter
    raises ``X12WriteError``; a remittance without payer address/phone raises ValueError.
    """
    if not remittances:
        raise ValueError("an 835 interchange needs at least one remittance")
    w = X12Writer(delimiters, line_break=line_break)
    env = EnvelopeWriter(w, parties, control, created_at)
    env.open("HP", IMPLEMENTATION_GUIDE)
    for remit in remittances:
        _write_transaction(env, remit)
    env.close()
    return w.getvalue()
