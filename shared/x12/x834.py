"""834 Benefit Enrollment and Maintenance (005010X220A1): parse and build member records.

Parsing only reports what the file says: whether it is a full file (BGN08) and, per
member, the INS maintenance type, identifiers, demographics, eligibility dates and
coverages. Applying changes to a roster (adds, terms, reinstatements, full-file
reconciliation) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.x12.dates import format_d8, parse_d8
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
from shared.x12.writer import DEFAULT_DELIMITERS, X12Writer
from shared.x12.x835 import Address

__all__ = [
    "ACTION_CHANGE",
    "ACTION_REPLACE",
    "ACTION_VERIFY",
    "IMPLEMENTATION_GUIDE",
    "MAINT_ADD",
    "MAINT_AUDIT",
    "MAINT_CHANGE",
    "MAINT_REINSTATE",
    "MAINT_TERMINATE",
    "Address",
    "Coverage",
    "Enrollment834",
    "MemberRecord",
    "build_834",
    "parse_834",
]

IMPLEMENTATION_GUIDE = "005010X220A1"

# BGN08 action codes
ACTION_CHANGE = "2"  # change (update): only the members listed changed
ACTION_VERIFY = "4"  # verify: full population for reconciliation, not for updating
ACTION_REPLACE = "RX"  # replace: full population that replaces the previous roster

# INS03 maintenance type codes (HD01 uses the same list)
MAINT_CHANGE = "001"
MAINT_ADD = "021"
MAINT_TERMINATE = "024"
MAINT_REINSTATE = "025"
MAINT_AUDIT = "030"


@dataclass(slots=True)
class Coverage:
    """Loop 2300: HD with its DTP 348/349 and REF."""

    maintenance_type: str  # HD01
    insurance_line: str  # HD03: HLT, PDG (prescription drug), DEN, ...
    plan: str = ""  # HD04 plan coverage description / plan id
    coverage_level: str = ""  # HD05: IND, FAM, EMP, ESP, ...
    begin: date | None = None  # DTP*348
    end: date | None = None  # DTP*349
    references: dict[str, str] = field(default_factory=dict)  # 2300 REF qualifier -> value


@dataclass(slots=True)
class MemberRecord:
    """Loop 2000 (INS) with its 2100A member name and the 2300 coverages."""

    is_subscriber: bool  # INS01 = Y
    relationship: str  # INS02: 18 self, 01 spouse, 19 child, ...
    maintenance_type: str  # INS03: 021 add, 001 change, 024 term, 025 reinstate, 030 audit
    subscriber_id: str  # REF*0F
    member_id: str  # NM1*IL NM109
    last_name: str
    first_name: str = ""
    middle_name: str = ""
    maintenance_reason: str = ""  # INS04
    benefit_status: str = "A"  # INS05: A active, C COBRA, S surviving insured, T tax equity
    employment_status: str = ""  # INS08: FT, PT, RT, ...
    member_id_qualifier: str = ""  # NM108: 34 SSN, ZZ mutually defined
    group_number: str = ""  # REF*1L in loop 2000
    other_ids: dict[str, str] = field(default_factory=dict)  # other loop 2000 REFs
    address: Address | None = None  # N3/N4 of NM1*IL
    birth_date: date | None = None  # DMG02
    sex: str = ""  # DMG03: F, M, U
    eligibility_begin: date | None = None  # DTP*356
    eligibility_end: date | None = None  # DTP*357
    coverages: list[Coverage] = field(default_factory=list)


@dataclass(slots=True)
class Enrollment834:
    """One 834 transaction set."""

    action_code: str  # BGN08: 2 change, 4 verify, RX replace
    reference: str  # BGN02
    created: date  # BGN03
    sponsor_name: str  # N1*P5
    payer_name: str  # N1*IN
    sponsor_id: str = ""
    payer_id: str = ""
    purpose: str = "00"  # BGN01: 00 original, 15 re-submission, 22 information copy
    master_policy: str = ""  # REF*38
    file_effective_date: date | None = None  # DTP*007
    members: list[MemberRecord] = field(default_factory=list)
    transaction_control_number: str = ""  # ST02

    @property
    def is_full_file(self) -> bool:
        """RX (replace) and 4 (verify) carry the sponsor's whole population;
        2 (change) carries only the members that changed."""
        return self.action_code in (ACTION_REPLACE, ACTION_VERIFY)


# --------------------------------------------------------------------------- parsing


def _opt(seg: list[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _dtp(seg: list[str]) -> tuple[date, date | None]:
    fmt, value = seg[2], seg[3]
    if fmt == "D8":
        return parse_d8(value), None
    if fmt == "RD8":
        start, _, end = value.partition("-")
        return parse_d8(start), parse_d8(end)
    raise ValueError(f"unsupported date format {fmt!r}")


def _parse_transaction(
    tset: TransactionSet, group: FunctionalGroup, interchange: Interchange
) -> Enrollment834:
    segments = tset.segments
    st = segments[0]
    if st[1] != "834":
        raise X12SyntaxError(
            f"expected an 834, found ST01 {st[1]!r}", segment_index=tset.start_index
        )
    version = _opt(st, 3) or group.version
    if not version.startswith("005010X220"):
        raise X12SyntaxError(
            f"unsupported 834 version {version!r} (need {IMPLEMENTATION_GUIDE})",
            segment_index=tset.start_index,
        )
    enrollment: Enrollment834 | None = None
    member: MemberRecord | None = None
    coverage: Coverage | None = None
    n1 = ""  # 1000 loop entity before the first INS
    nm1 = ""  # 2100 loop entity within a member
    pos = 0
    try:
        for pos in range(1, len(segments) - 1):
            seg = segments[pos]
            sid = seg[0]
            if sid == "BGN":
                enrollment = Enrollment834(
                    action_code=_opt(seg, 8),
                    reference=seg[2],
                    created=parse_d8(seg[3]),
                    sponsor_name="",
                    payer_name="",
                    purpose=seg[1],
                    transaction_control_number=st[2],
                )
                continue
            if enrollment is None:
                raise ValueError("834 must start with BGN")
            if sid == "INS":
                member = MemberRecord(
                    is_subscriber=seg[1] == "Y",
                    relationship=seg[2],
                    maintenance_type=seg[3],
                    maintenance_reason=_opt(seg, 4),
                    benefit_status=_opt(seg, 5),
                    employment_status=_opt(seg, 8),
                    subscriber_id="",
                    member_id="",
                    last_name="",
                )
                enrollment.members.append(member)
                coverage = None
                nm1 = ""
            elif member is None:
                if sid == "N1":
                    n1 = seg[1]
                    if n1 == "P5":
                        enrollment.sponsor_name, enrollment.sponsor_id = seg[2], _opt(seg, 4)
                    elif n1 == "IN":
                        enrollment.payer_name, enrollment.payer_id = seg[2], _opt(seg, 4)
                elif sid == "REF" and seg[1] == "38":
                    enrollment.master_policy = seg[2]
                elif sid == "DTP" and seg[1] == "007":
                    enrollment.file_effective_date = _dtp(seg)[0]
            elif sid == "HD":
                coverage = Coverage(
                    maintenance_type=seg[1],
                    insurance_line=seg[3],
                    plan=_opt(seg, 4),
                    coverage_level=_opt(seg, 5),
                )
                member.coverages.append(coverage)
                nm1 = ""
            elif coverage is not None:
                if sid == "DTP":
                    start, end = _dtp(seg)
                    if seg[1] == "348":
                        coverage.begin = start
                    elif seg[1] == "349":
                        coverage.end = end or start
                elif sid == "REF":
                    coverage.references[seg[1]] = seg[2]
            elif sid == "REF":
                if seg[1] == "0F":
                    member.subscriber_id = seg[2]
                elif seg[1] == "1L":
                    member.group_number = seg[2]
                else:
                    member.other_ids[seg[1]] = seg[2]
            elif sid == "DTP":
                start, end = _dtp(seg)
                if seg[1] == "356":
                    member.eligibility_begin = start
                elif seg[1] == "357":
                    member.eligibility_end = end or start
            elif sid == "NM1":
                # 2100A is NM1*IL, or NM1*74 (corrected insured) on a name correction.
                nm1 = "IL" if seg[1] == "74" else seg[1]
                if nm1 == "IL":
                    member.last_name = seg[3]
                    member.first_name = _opt(seg, 4)
                    member.middle_name = _opt(seg, 5)
                    member.member_id_qualifier = _opt(seg, 8)
                    member.member_id = _opt(seg, 9)
            elif nm1 == "IL":
                if sid == "N3":
                    member.address = Address(seg[1], "", "", "", _opt(seg, 2))
                elif sid == "N4" and member.address is not None:
                    member.address.city = seg[1]
                    member.address.state = _opt(seg, 2)
                    member.address.postal_code = _opt(seg, 3)
                elif sid == "DMG":
                    if seg[1] != "D8":
                        raise ValueError(f"DMG01 must be D8, got {seg[1]!r}")
                    member.birth_date = parse_d8(seg[2])
                    member.sex = _opt(seg, 3)
    except (IndexError, ValueError) as exc:
        raise X12SyntaxError(
            f"malformed {segments[pos][0]} segment: {exc}", segment_index=tset.start_index + pos
        ) from exc
    if enrollment is None:
        raise X12SyntaxError("834 transaction has no BGN", segment_index=tset.start_index)
    if enrollment.action_code not in (ACTION_CHANGE, ACTION_VERIFY, ACTION_REPLACE):
        raise X12SyntaxError(
            f"BGN08 action code must be 2, 4 or RX, got {enrollment.action_code!r}",
            segment_index=tset.start_index + 1,
        )
    return enrollment


def parse_834(data: str | bytes) -> list[Enrollment834]:
    """Parse every 834 transaction set in an interchange."""
    _, segments = tokenize(data)
    return [
        _parse_transaction(tset, group, interchange)
        for interchange, group, tset in iter_transactions(segments)
    ]


# --------------------------------------------------------------------------- building


def _write_member(w: X12Writer, member: MemberRecord) -> None:
    w.seg(
        "INS",
        "Y" if member.is_subscriber else "N",
        member.relationship,
        member.maintenance_type,
        member.maintenance_reason,
        member.benefit_status,
        None,
        None,
        member.employment_status,
    )
    w.seg("REF", "0F", member.subscriber_id)
    if member.group_number:
        w.seg("REF", "1L", member.group_number)
    for qual, value in member.other_ids.items():
        w.seg("REF", qual, value)
    if member.eligibility_begin is not None:
        w.seg("DTP", "356", "D8", format_d8(member.eligibility_begin))
    if member.eligibility_end is not None:
        w.seg("DTP", "357", "D8", format_d8(member.eligibility_end))
    w.seg(
        "NM1",
        "IL",
        "1",
        member.last_name,
        member.first_name,
        member.middle_name,
        None,
        None,
        member.member_id_qualifier if member.member_id else None,
        member.member_id,
    )
    if member.address is not None:
        addr = member.address
        w.seg("N3", addr.line1, addr.line2)
        w.seg("N4", addr.city, addr.state, addr.postal_code)
    if member.birth_date is not None:
        w.seg("DMG", "D8", format_d8(member.birth_date), member.sex)
    for cov in member.coverages:
        w.seg("HD", cov.maintenance_type, None, cov.insurance_line, cov.plan, cov.coverage_level)
        if cov.begin is not None:
            w.seg("DTP", "348", "D8", format_d8(cov.begin))
        if cov.end is not None:
            w.seg("DTP", "349", "D8", format_d8(cov.end))
        for qual, value in cov.references.items():
            w.seg("REF", qual, value)


def build_834(
    enrollments: Sequence[Enrollment834],
    *,
    parties: Parties,
    control: ControlNumbers,
    created_at: datetime,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
) -> str:
    """Write ``enrollments`` as one interchange with one BE group, one ST..SE each.

    Sponsor and payer ids are written with qualifier FI (federal tax id) when set.
    """
    if not enrollments:
        raise ValueError("an 834 interchange needs at least one enrollment")
    w = X12Writer(delimiters, line_break=line_break)
    env = EnvelopeWriter(w, parties, control, created_at)
    env.open("BE", IMPLEMENTATION_GUIDE)
    for enr in enrollments:
        env.open_set("834", IMPLEMENTATION_GUIDE)
        w.seg(
            "BGN",
            enr.purpose,
            enr.reference,
            format_d8(enr.created),
            created_at.strftime("%H%M"),
            None,
            None,
            None,
            enr.action_code,
        )
        if enr.master_policy:
            w.seg("REF", "38", enr.master_policy)
        if enr.file_effective_date is not None:
            w.seg("DTP", "007", "D8", format_d8(enr.file_effective_date))
        w.seg("N1", "P5", enr.sponsor_name, "FI" if enr.sponsor_id else None, enr.sponsor_id)
        w.seg("N1", "IN", enr.payer_name, "FI" if enr.payer_id else None, enr.payer_id)
        for member in enr.members:
            _write_member(w, member)
        env.close_set()
    env.close()
    return w.getvalue()
