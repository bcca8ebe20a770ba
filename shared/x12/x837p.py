"""Build 005010X222A1 837P professional claim files.

Inputs are plain dataclasses; deciding codes, units, POS or modifiers is the
billing service's job. This module enforces what makes a file structurally
acceptable: balanced totals (CLM02 = sum of SV102), REF*F8 on replacement and
void claims, IG limits (12 diagnoses, 4 pointers per line, 50 lines per claim)
and the envelope arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.money import Cents, format_x12_amount
from shared.x12.envelope import ControlNumbers, EnvelopeWriter, Parties
from shared.x12.tokenizer import Delimiters
from shared.x12.writer import DEFAULT_DELIMITERS, X12Writer

__all__ = [
    "IMPLEMENTATION_GUIDE",
    "BillingProvider",
    "Built837",
    "Claim837",
    "Claim837Error",
    "ClaimLine",
    "Payer",
    "Receiver",
    "RenderingProvider",
    "Submitter",
    "Subscriber",
    "build_837p",
    "build_837p_batch",
]

IMPLEMENTATION_GUIDE = "005010X222A1"
# The TR3 recommends at most 5000 CLM loops per ST..SE.
MAX_CLAIMS_PER_SET = 5000
MAX_DIAGNOSES = 12
MAX_POINTERS = 4
MAX_LINES = 50
MAX_MODIFIERS = 4

_NPI = re.compile(r"^[12]\d{9}$")
_TIN = re.compile(r"^\d{9}$")
_ZIP = re.compile(r"^\d{5}(\d{4})?$")
_ZIP9 = re.compile(r"^\d{9}$")
_STATE = re.compile(r"^[A-Z]{2}$")
_TAXONOMY = re.compile(r"^[0-9A-Z]{9}X$")
_DIAGNOSIS = re.compile(r"^[A-Z][0-9A-Z]{2,6}$")
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_PHONE = re.compile(r"^\d{10}$")
_FILING = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "16",
        "17",
        "AM",
        "BL",
        "CH",
        "CI",
        "DS",
        "FI",
        "HM",
        "LM",
        "MA",
        "MB",
        "MC",
        "OF",
        "TV",
        "VA",
        "WC",
        "ZZ",
    ]
)


class Claim837Error(ValueError):
    """Claim data that would produce an invalid or unbalanced 837P."""


@dataclass(frozen=True, slots=True)
class Submitter:
    name: str
    id: str
    contact_name: str
    phone: str  # 10 digits


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    id: str


@dataclass(frozen=True, slots=True)
class BillingProvider:
    name: str
    npi: str
    tin: str  # 9 digits, no hyphen
    address1: str
    city: str
    state: str
    zip: str  # 9 digits: the TR3 requires ZIP+4 for the billing provider
    taxonomy: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Subscriber who is also the patient (SBR02 = 18, no 2000C loop)."""

    last: str
    first: str
    member_id: str
    address1: str
    city: str
    state: str
    zip: str
    birth_date: date
    sex: str  # M, F or U
    group: str | None = None
    payer_responsibility: str = "P"  # SBR01: P primary, S secondary, T tertiary
    claim_filing_indicator: str = "CI"  # SBR09: CI commercial, MC Medicaid, MB Part B, HM HMO


@dataclass(frozen=True, slots=True)
class Payer:
    name: str
    payer_id: str


@dataclass(frozen=True, slots=True)
class RenderingProvider:
    last: str
    first: str
    npi: str
    taxonomy: str


@dataclass(frozen=True, slots=True)
class ClaimLine:
    code: str
    charge_cents: Cents
    units: int
    dos: date
    modifiers: tuple[str, ...] = ()
    diagnosis_pointers: tuple[int, ...] = (1,)


@dataclass(frozen=True, slots=True)
class Claim837:
    patient_control_number: str
    total_cents: Cents
    place_of_service: str
    frequency_code: str  # 1 original, 7 replacement, 8 void
    diagnoses: tuple[str, ...]  # without dots; the first is the principal (ABK)
    lines: tuple[ClaimLine, ...]
    billing_provider: BillingProvider
    subscriber: Subscriber
    payer: Payer
    rendering: RenderingProvider | None = None
    payer_icn: str | None = None  # REF*F8, required for frequency 7 and 8
    prior_authorization: str | None = None  # REF*G1


@dataclass(frozen=True, slots=True)
class Built837:
    """The file text and which claims went into each ST02, to link 999 AK2/IK5 back."""

    text: str
    claims_by_set: dict[str, list[str]] = field(default_factory=dict)
    segment_count: int = 0


def _need(ok: object, message: str) -> None:
    if not ok:
        raise Claim837Error(message)


def _d8(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _check_provider(p: BillingProvider) -> None:
    _need(p.name, "billing provider name is empty")
    _need(_NPI.match(p.npi), f"billing provider NPI must be 10 digits starting 1/2: {p.npi!r}")
    _need(_TIN.match(p.tin), f"billing provider TIN must be 9 digits without hyphen: {p.tin!r}")
    _need(_ZIP9.match(p.zip), f"billing provider ZIP must be 9 digits (ZIP+4): {p.zip!r}")
    _need(_STATE.match(p.state), f"billing provider state must be 2 letters: {p.state!r}")
    _need(_TAXONOMY.match(p.taxonomy), f"billing provider taxonomy invalid: {p.taxonomy!r}")
    _need(p.address1 and p.city, "billing provider address and city are required")


def _check_subscriber(s: Subscriber, payer: Payer) -> None:
    _need(s.last and s.member_id, "subscriber last name and member id are required")
    _need(s.sex in ("M", "F", "U"), f"subscriber sex must be M, F or U: {s.sex!r}")
    _need(_ZIP.match(s.zip), f"subscriber ZIP must be 5 or 9 digits: {s.zip!r}")
    _need(_STATE.match(s.state), f"subscriber state must be 2 letters: {s.state!r}")
    _need(s.address1 and s.city, "subscriber address and city are required")
    _need(s.payer_responsibility in ("P", "S", "T"), "SBR01 must be P, S or T")
    _need(
        s.claim_filing_indicator in _FILING,
        f"unknown claim filing indicator {s.claim_filing_indicator!r}",
    )
    _need(payer.name and payer.payer_id, "payer name and id are required")


def _check_claim(c: Claim837) -> None:
    # Plain ifs rather than _need(): messages are only formatted when a check fails,
    # which matters at tens of thousands of claims per second.
    pcn = c.patient_control_number
    if not 1 <= len(pcn) <= 38:
        raise Claim837Error(f"patient control number must be 1-38 chars: {pcn!r}")
    freq = c.frequency_code
    if freq not in ("1", "7", "8"):
        raise Claim837Error(f"{pcn}: frequency must be 1, 7 or 8, got {freq!r}")
    if freq != "1" and not c.payer_icn:
        raise Claim837Error(f"{pcn}: frequency {freq} requires payer_icn (REF*F8)")
    pos = c.place_of_service
    if len(pos) != 2 or not pos.isdigit():
        raise Claim837Error(f"{pcn}: place of service must be 2 digits: {pos!r}")
    n_dx = len(c.diagnoses)
    if not 1 <= n_dx <= MAX_DIAGNOSES:
        raise Claim837Error(f"{pcn}: 1-{MAX_DIAGNOSES} diagnoses allowed, got {n_dx}")
    for dx in c.diagnoses:
        if _DIAGNOSIS.match(dx) is None:
            raise Claim837Error(f"{pcn}: diagnosis {dx!r} must be ICD-10 without dots")
    if not 1 <= len(c.lines) <= MAX_LINES:
        raise Claim837Error(f"{pcn}: 1-{MAX_LINES} service lines allowed")
    total = 0
    for n, line in enumerate(c.lines, start=1):
        if not line.code or line.units <= 0 or line.charge_cents < 0:
            raise Claim837Error(
                f"{pcn} line {n}: needs a procedure code, positive units and a charge >= 0"
            )
        if line.modifiers:
            if len(line.modifiers) > MAX_MODIFIERS:
                raise Claim837Error(f"{pcn} line {n}: at most {MAX_MODIFIERS} modifiers")
            for mod in line.modifiers:
                if _MODIFIER.match(mod) is None:
                    raise Claim837Error(f"{pcn} line {n}: modifier {mod!r} must be 2 chars")
        ptrs = line.diagnosis_pointers
        if not 1 <= len(ptrs) <= MAX_POINTERS:
            raise Claim837Error(f"{pcn} line {n}: 1-{MAX_POINTERS} diagnosis pointers allowed")
        if len(set(ptrs)) != len(ptrs):
            raise Claim837Error(f"{pcn} line {n}: duplicate diagnosis pointer")
        for ptr in ptrs:
            if not 1 <= ptr <= n_dx:
                raise Claim837Error(f"{pcn} line {n}: pointer {ptr} outside 1..{n_dx}")
        total += line.charge_cents
    if total != c.total_cents:
        raise Claim837Error(
            f"{pcn}: CLM02 {format_x12_amount(c.total_cents)} != sum of SV102 "
            f"{format_x12_amount(total)}"
        )
    r = c.rendering
    if r is not None and (
        not r.last or _NPI.match(r.npi) is None or _TAXONOMY.match(r.taxonomy) is None
    ):
        raise Claim837Error(f"{pcn}: rendering provider needs last name, NPI and taxonomy")


_Group = dict[tuple[Subscriber, Payer], list[Claim837]]


def _group(claims: Iterable[Claim837]) -> dict[BillingProvider, _Group]:
    """Billing provider -> (subscriber, payer) -> claims, keeping first-seen order."""
    grouped: dict[BillingProvider, _Group] = {}
    for claim in claims:
        by_sub = grouped.setdefault(claim.billing_provider, {})
        by_sub.setdefault((claim.subscriber, claim.payer), []).append(claim)
    return grouped


class _Builder:
    """Appends formatted segments to the writer's list with f-strings.

    Free text is validated per claim/loop with one regex search (``writer.check``);
    generated values (amounts, dates, counts) cannot contain delimiters because the
    writer refuses delimiters among digits, letters, '.', '-' and space.
    """

    def __init__(self, writer: X12Writer) -> None:
        self.w = writer
        self.out = writer.segments()
        d = writer.delimiters
        self.e = d.element
        self.c = d.component
        self.t = writer.format("X")[1:]  # terminator plus optional line break
        self.dates: dict[date, str] = {}

    def d8(self, value: date) -> str:
        text = self.dates.get(value)
        if text is None:
            text = self.dates[value] = _d8(value)
        return text

    def header(
        self, ref: str, created_at: datetime, submitter: Submitter, receiver: Receiver
    ) -> None:
        e, t = self.e, self.t
        self.out.extend(
            (
                f"BHT{e}0019{e}00{e}{ref}{e}{created_at:%Y%m%d}{e}{created_at:%H%M}{e}CH{t}",
                f"NM1{e}41{e}2{e}{submitter.name}{e}{e}{e}{e}{e}46{e}{submitter.id}{t}",
                f"PER{e}IC{e}{submitter.contact_name}{e}TE{e}{submitter.phone}{t}",
                f"NM1{e}40{e}2{e}{receiver.name}{e}{e}{e}{e}{e}46{e}{receiver.id}{t}",
            )
        )

    def provider(self, hl: int, p: BillingProvider) -> None:
        e, t = self.e, self.t
        self.out.extend(
            (
                f"HL{e}{hl}{e}{e}20{e}1{t}",
                f"PRV{e}BI{e}PXC{e}{p.taxonomy}{t}",
                f"NM1{e}85{e}2{e}{p.name}{e}{e}{e}{e}{e}XX{e}{p.npi}{t}",
                f"N3{e}{p.address1}{t}",
                f"N4{e}{p.city}{e}{p.state}{e}{p.zip}{t}",
                f"REF{e}EI{e}{p.tin}{t}",
            )
        )

    def subscriber(self, hl: int, parent: int, s: Subscriber, payer: Payer) -> None:
        e, t = self.e, self.t
        self.out.extend(
            (
                f"HL{e}{hl}{e}{parent}{e}22{e}0{t}",
                f"SBR{e}{s.payer_responsibility}{e}18{e}{s.group or ''}{e}{e}{e}{e}{e}{e}"
                f"{s.claim_filing_indicator}{t}",
                f"NM1{e}IL{e}1{e}{s.last}{e}{s.first}{e}{e}{e}{e}MI{e}{s.member_id}{t}",
                f"N3{e}{s.address1}{t}",
                f"N4{e}{s.city}{e}{s.state}{e}{s.zip}{t}",
                f"DMG{e}D8{e}{self.d8(s.birth_date)}{e}{s.sex}{t}",
                f"NM1{e}PR{e}2{e}{payer.name}{e}{e}{e}{e}{e}PI{e}{payer.payer_id}{t}",
            )
        )

    def claim(self, c: Claim837) -> None:
        e, comp, t = self.e, self.c, self.t
        out = self.out
        texts = [c.patient_control_number, *c.diagnoses]
        if c.payer_icn:
            texts.append(c.payer_icn)
        if c.prior_authorization:
            texts.append(c.prior_authorization)
        for line in c.lines:
            texts.append(line.code)
            texts.extend(line.modifiers)
        self.w.check(f"claim {c.patient_control_number}", *texts)
        out.append(
            f"CLM{e}{c.patient_control_number}{e}{format_x12_amount(c.total_cents)}{e}{e}{e}"
            f"{c.place_of_service}{comp}B{comp}{c.frequency_code}{e}Y{e}A{e}Y{e}Y{t}"
        )
        if c.prior_authorization:
            out.append(f"REF{e}G1{e}{c.prior_authorization}{t}")
        if c.frequency_code != "1" and c.payer_icn:
            out.append(f"REF{e}F8{e}{c.payer_icn}{t}")
        dx = c.diagnoses
        hi = [f"ABK{comp}{dx[0]}"]
        hi.extend(f"ABF{comp}{code}" for code in dx[1:])
        out.append(f"HI{e}{e.join(hi)}{t}")
        r = c.rendering
        if r is not None:
            self.w.check(f"claim {c.patient_control_number} rendering", r.last, r.first)
            out.append(f"NM1{e}82{e}1{e}{r.last}{e}{r.first}{e}{e}{e}{e}XX{e}{r.npi}{t}")
            out.append(f"PRV{e}PE{e}PXC{e}{r.taxonomy}{t}")
        for n, line in enumerate(c.lines, start=1):
            proc = comp.join(("HC", line.code, *line.modifiers))
            ptrs = comp.join(map(str, line.diagnosis_pointers))
            out.append(f"LX{e}{n}{t}")
            out.append(
                f"SV1{e}{proc}{e}{format_x12_amount(line.charge_cents)}{e}UN{e}{line.units}"
                f"{e}{e}{e}{ptrs}{t}"
            )
            out.append(f"DTP{e}472{e}D8{e}{self.d8(line.dos)}{t}")


def build_837p_batch(
    submitter: Submitter,
    receiver: Receiver,
    claims: Sequence[Claim837],
    control: ControlNumbers,
    created_at: datetime,
    *,
    batch_reference: str,
    usage: str = "T",
    parties: Parties | None = None,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
    max_claims_per_set: int = MAX_CLAIMS_PER_SET,
) -> Built837:
    """Build one interchange; claims are grouped by billing provider, then subscriber/payer.

    ``parties`` overrides the ISA/GS ids, which default to the submitter and receiver
    ids with qualifier ZZ. Sets are split after ``max_claims_per_set`` claims.
    """
    if not claims:
        raise Claim837Error("an 837P needs at least one claim")
    if max_claims_per_set < 1:
        raise Claim837Error("max_claims_per_set must be positive")
    _need(
        submitter.name and submitter.id and submitter.contact_name,
        "submitter name, id and contact are required",
    )
    _need(_PHONE.match(submitter.phone), f"submitter phone must be 10 digits: {submitter.phone!r}")
    _need(receiver.name and receiver.id, "receiver name and id are required")
    _need(batch_reference, "BHT03 batch reference is required")
    seen: set[str] = set()
    for claim in claims:
        _check_claim(claim)
        key = claim.patient_control_number
        _need(key not in seen, f"duplicate patient control number {key!r} in one file")
        seen.add(key)
    grouped = _group(claims)
    for provider, by_sub in grouped.items():
        _check_provider(provider)
        for sub, payer in by_sub:
            _check_subscriber(sub, payer)

    writer = X12Writer(delimiters, line_break=line_break)
    writer.check(
        "submitter/receiver",
        submitter.name,
        submitter.id,
        submitter.contact_name,
        receiver.name,
        receiver.id,
        batch_reference,
    )
    if parties is None:
        parties = Parties("ZZ", submitter.id, "ZZ", receiver.id, usage)
    env = EnvelopeWriter(writer, parties, control, created_at)
    env.open("HC", IMPLEMENTATION_GUIDE)
    b = _Builder(writer)
    claims_by_set: dict[str, list[str]] = {}

    in_set = 0
    hl = 0
    current: list[str] = []

    def start_set() -> None:
        nonlocal in_set, hl, current
        st02 = env.open_set("837", IMPLEMENTATION_GUIDE)
        b.header(batch_reference, created_at, submitter, receiver)
        current = claims_by_set.setdefault(st02, [])
        in_set = 0
        hl = 0

    start_set()
    for provider, by_sub in grouped.items():
        writer.check(
            f"billing provider {provider.npi}",
            provider.name,
            provider.address1,
            provider.city,
            provider.taxonomy,
        )
        provider_hl = 0
        for (sub, payer), sub_claims in by_sub.items():
            writer.check(
                f"subscriber {sub.member_id}",
                sub.last,
                sub.first,
                sub.member_id,
                sub.address1,
                sub.city,
                sub.group or "",
                payer.name,
                payer.payer_id,
            )
            sub_hl = 0
            for claim in sub_claims:
                if in_set == max_claims_per_set:
                    env.close_set()
                    start_set()
                    provider_hl = sub_hl = 0
                if provider_hl == 0:
                    hl += 1
                    provider_hl = hl
                    b.provider(hl, provider)
                if sub_hl == 0:
                    hl += 1
                    sub_hl = hl
                    b.subscriber(hl, provider_hl, sub, payer)
                b.claim(claim)
                current.append(claim.patient_control_number)
                in_set += 1
    env.close_set()
    env.close()
    return Built837(writer.getvalue(), claims_by_set, len(writer))


def build_837p(
    submitter: Submitter,
    receiver: Receiver,
    claims: Sequence[Claim837],
    control: ControlNumbers,
    created_at: datetime,
    *,
    batch_reference: str,
    usage: str = "T",
    parties: Parties | None = None,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
    max_claims_per_set: int = MAX_CLAIMS_PER_SET,
) -> str:
    """The 837P text; see ``build_837p_batch`` for the ST02-to-claims mapping."""
    return build_837p_batch(
        submitter,
        receiver,
        claims,
        control,
        created_at,
        batch_reference=batch_reference,
        usage=usage,
        parties=parties,
        delimiters=delimiters,
        line_break=line_break,
        max_claims_per_set=max_claims_per_set,
    ).text
