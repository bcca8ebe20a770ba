"""271 Eligibility Benefit Response (005010X279A1): parse and build.

The parser reports, per subscriber (HL 22) and dependent (HL 23), the member's
identity, the EB benefit segments with their dates, and AAA request errors. Whether a
member is eligible on a date of service is the caller's decision.

Dates: DTP segments in 2100C/2100D (before the first EB) apply to every benefit of the
member; a DTP in 2110C/2110D (after an EB) applies to that benefit only. ``Benefit.begin``
and ``Benefit.end`` hold the benefit's own dates when it has any, else the member's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from shared.money import AmountError, Cents, format_x12_amount, parse_x12_amount
from shared.x12.dates import format_d8, parse_d8
from shared.x12.envelope import ControlNumbers, EnvelopeWriter, Parties
from shared.x12.tokenizer import (
    Delimiters,
    TransactionSet,
    X12SyntaxError,
    iter_transactions,
    tokenize,
)
from shared.x12.writer import DEFAULT_DELIMITERS, X12Writer

__all__ = [
    "IMPLEMENTATION_GUIDE",
    "Benefit",
    "DateRange",
    "EligibilityResponse",
    "RequestError",
    "SubscriberEligibility",
    "Trace",
    "build_271",
    "parse_271",
]

IMPLEMENTATION_GUIDE = "005010X279A1"

# Which DTP qualifiers give a benefit window's begin and end (first present wins).
_BEGIN_QUALIFIERS = ("346", "348", "356", "291", "307")  # plan / benefit / eligibility begin
_END_SINGLE = ("347", "349", "357")  # plan / benefit / eligibility end (D8)
_END_RANGE = ("291", "307")  # RD8 plan / eligibility range


@dataclass(frozen=True, slots=True)
class DateRange:
    """A DTP value: D8 gives ``begin`` only, RD8 ``CCYYMMDD-CCYYMMDD`` gives both."""

    begin: date
    end: date | None = None


@dataclass(frozen=True, slots=True)
class RequestError:
    """AAA: AAA01 valid request (Y/N), AAA03 reject reason (e.g. 72 invalid member id,
    75 subscriber not found), AAA04 follow-up action (C please correct, N resubmission
    not allowed, R resubmission allowed, ...)."""

    level: str  # source, receiver, subscriber, dependent
    valid_request: bool
    reason_code: str
    follow_up: str = ""


@dataclass(frozen=True, slots=True)
class Trace:
    """TRN: type 2 = referenced (the 270's trace echoed), 1 = current (payer's own)."""

    type_code: str
    number: str
    originator_id: str  # TRN03: "1" or "9" + EIN or other id


@dataclass(slots=True)
class Benefit:
    """One EB segment (loop 2110C/2110D) with its own dates and messages."""

    code: str  # EB01: 1 active, 6 inactive, A coinsurance, B copay, ...
    coverage_level: str = ""  # EB02: IND, FAM, EMP, ...
    service_types: tuple[str, ...] = ()  # EB03 repetitions: 30 plan, 88 pharmacy, ...
    insurance_type: str = ""  # EB04: MC Medicaid, MB Medicare B, C1 commercial, HM HMO, ...
    plan: str = ""  # EB05 plan coverage description
    time_period: str = ""  # EB06
    amount: Cents | None = None  # EB07
    percent: Decimal | None = None  # EB08
    quantity_qualifier: str = ""  # EB09
    quantity: Decimal | None = None  # EB10
    authorization_required: str = ""  # EB11: Y, N, U
    in_network: str = ""  # EB12: Y, N, U, W
    begin: date | None = None
    end: date | None = None
    dates: dict[str, DateRange] = field(default_factory=dict)  # EB-level DTPs only
    messages: list[str] = field(default_factory=list)  # MSG01


@dataclass(slots=True)
class SubscriberEligibility:
    """Loop 2000C (subscriber) or 2000D (dependent, ``is_dependent``)."""

    member_id: str  # NM109 (for a dependent: its own id if sent, else the subscriber's)
    last_name: str
    first_name: str = ""
    birth_date: date | None = None  # DMG02
    sex: str = ""  # DMG03
    is_dependent: bool = False
    subscriber_member_id: str = ""  # the HL 22 member a dependent belongs to
    traces: list[Trace] = field(default_factory=list)  # TRN (2 = echoed from the 270)
    plan_begin: date | None = None  # member-level window from DTP 291/346/347/...
    plan_end: date | None = None
    dates: dict[str, DateRange] = field(default_factory=dict)  # member-level DTPs
    benefits: list[Benefit] = field(default_factory=list)
    errors: list[RequestError] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.last_name}, {self.first_name}" if self.first_name else self.last_name


@dataclass(slots=True)
class EligibilityResponse:
    """One 271 transaction set."""

    payer_name: str  # 2100A NM1*PR
    payer_id: str
    receiver_name: str  # 2100B NM1 (1P provider, FA facility, ...)
    receiver_id: str
    reference: str = ""  # BHT03
    created: date | None = None  # BHT04
    subscribers: list[SubscriberEligibility] = field(default_factory=list)
    errors: list[RequestError] = field(default_factory=list)  # AAA in 2100A/2100B
    transaction_control_number: str = ""  # ST02


# --------------------------------------------------------------------------- parsing


def _opt(seg: list[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _range(fmt: str, value: str) -> DateRange:
    if fmt == "D8":
        return DateRange(parse_d8(value))
    if fmt == "RD8":
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError(f"RD8 needs CCYYMMDD-CCYYMMDD, got {value!r}")
        begin, finish = parse_d8(start), parse_d8(end)
        if finish < begin:
            raise ValueError(f"RD8 range ends before it begins: {value!r}")
        return DateRange(begin, finish)
    raise ValueError(f"unsupported date format {fmt!r}")


def _window(dates: Mapping[str, DateRange]) -> tuple[date | None, date | None]:
    begin = next((dates[q].begin for q in _BEGIN_QUALIFIERS if q in dates), None)
    end = next((dates[q].begin for q in _END_SINGLE if q in dates), None)
    if end is None:
        end = next((dates[q].end for q in _END_RANGE if q in dates and dates[q].end), None)
    return begin, end


def _number(text: str) -> Decimal | None:
    if not text:
        return None
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"not a number: {text!r}")
    return value


def _eb(seg: list[str], repetition: str) -> Benefit:
    types = _opt(seg, 3)
    amount = _opt(seg, 7)
    return Benefit(
        code=seg[1],
        coverage_level=_opt(seg, 2),
        service_types=tuple(t for t in (types.split(repetition) if repetition else [types]) if t),
        insurance_type=_opt(seg, 4),
        plan=_opt(seg, 5),
        time_period=_opt(seg, 6),
        amount=parse_x12_amount(amount) if amount else None,
        percent=_number(_opt(seg, 8)),
        quantity_qualifier=_opt(seg, 9),
        quantity=_number(_opt(seg, 10)),
        authorization_required=_opt(seg, 11),
        in_network=_opt(seg, 12),
    )


def _finish(member: SubscriberEligibility | None) -> None:
    """Member windows are known once its segments are read; benefits inherit them."""
    if member is None:
        return
    member.plan_begin, member.plan_end = _window(member.dates)
    for benefit in member.benefits:
        begin, end = _window(benefit.dates)
        benefit.begin = begin or member.plan_begin
        benefit.end = end or member.plan_end


def _parse_transaction(tset: TransactionSet, version: str, repetition: str) -> EligibilityResponse:
    segments = tset.segments
    st = segments[0]
    if st[1] != "271":
        raise X12SyntaxError(
            f"expected a 271, found ST01 {st[1]!r}", segment_index=tset.start_index
        )
    version = _opt(st, 3) or version
    if not version.startswith("005010X279"):
        raise X12SyntaxError(
            f"unsupported 271 version {version!r} (need {IMPLEMENTATION_GUIDE})",
            segment_index=tset.start_index,
        )
    resp = EligibilityResponse("", "", "", "", transaction_control_number=st[2])
    level = ""  # HL03 of the current loop
    member: SubscriberEligibility | None = None
    subscriber_id = ""
    benefit: Benefit | None = None
    in_ls = False  # inside LS..LE (2115/2120 related-entity loops)
    pos = 0
    try:
        for pos in range(1, len(segments) - 1):
            seg = segments[pos]
            sid = seg[0]
            if sid == "HL":
                _finish(member)
                level, member, benefit, in_ls = seg[3], None, None, False
                if level in ("22", "23"):
                    member = SubscriberEligibility(
                        member_id="",
                        last_name="",
                        is_dependent=level == "23",
                        subscriber_member_id=subscriber_id if level == "23" else "",
                    )
                    resp.subscribers.append(member)
                elif level not in ("20", "21"):
                    raise ValueError(f"unknown HL level {level!r}")
            elif sid == "LS":
                in_ls = True
            elif sid == "LE":
                in_ls = False
            elif in_ls:
                continue
            elif sid == "BHT":
                resp.reference = _opt(seg, 3)
                resp.created = parse_d8(seg[4]) if _opt(seg, 4) else None
            elif sid == "NM1":
                if level == "20":
                    resp.payer_name, resp.payer_id = _opt(seg, 3), _opt(seg, 9)
                elif level == "21":
                    resp.receiver_name, resp.receiver_id = _opt(seg, 3), _opt(seg, 9)
                elif member is not None and benefit is None:
                    member.last_name = _opt(seg, 3)
                    member.first_name = _opt(seg, 4)
                    member.member_id = _opt(seg, 9) or member.subscriber_member_id
                    if level == "22":
                        subscriber_id = member.member_id
            elif sid == "AAA":
                name = {"20": "source", "21": "receiver", "22": "subscriber"}.get(
                    level, "dependent"
                )
                err = RequestError(name, seg[1] == "Y", _opt(seg, 3), _opt(seg, 4))
                if member is not None:
                    member.errors.append(err)
                else:
                    resp.errors.append(err)
            elif member is None:
                continue
            elif sid == "EB":
                benefit = _eb(seg, repetition)
                member.benefits.append(benefit)
            elif sid == "DTP":
                target = benefit.dates if benefit is not None else member.dates
                target[seg[1]] = _range(seg[2], seg[3])
            elif sid == "MSG":
                if benefit is not None:
                    benefit.messages.append(seg[1])
            elif sid == "DMG" and benefit is None:
                if _opt(seg, 2):
                    if seg[1] != "D8":
                        raise ValueError(f"DMG01 must be D8, got {seg[1]!r}")
                    member.birth_date = parse_d8(seg[2])
                member.sex = _opt(seg, 3)
            elif sid == "TRN":
                member.traces.append(Trace(seg[1], seg[2], seg[3]))
        _finish(member)
    except (IndexError, ValueError, AmountError, InvalidOperation) as exc:
        raise X12SyntaxError(
            f"malformed {segments[pos][0]} segment: {exc}", segment_index=tset.start_index + pos
        ) from exc
    return resp


def parse_271(data: str | bytes) -> list[EligibilityResponse]:
    """Parse every 271 transaction set in an interchange."""
    delims, segments = tokenize(data)
    return [
        _parse_transaction(tset, group.version, delims.repetition)
        for _, group, tset in iter_transactions(segments)
    ]


# --------------------------------------------------------------------------- building

_SENTINEL = "\x01"  # stands in for EB03 while the writer checks the other elements


def _write_dates(w: X12Writer, dates: Mapping[str, DateRange]) -> None:
    for qual, rng in dates.items():
        if rng.end is None:
            w.seg("DTP", qual, "D8", format_d8(rng.begin))
        else:
            w.seg("DTP", qual, "RD8", f"{format_d8(rng.begin)}-{format_d8(rng.end)}")


def _plan_dates(begin: date | None, end: date | None) -> dict[str, DateRange]:
    if begin is None:
        return {}
    return {"291": DateRange(begin, end)}


def _write_benefit(w: X12Writer, benefit: Benefit, member: SubscriberEligibility) -> None:
    types = benefit.service_types
    rep = w.delimiters.repetition
    w.check("EB03", *types)
    if len(types) > 1 and not rep:
        raise ValueError("several EB03 service types need a repetition separator")
    text = w.format(
        "EB",
        benefit.code,
        benefit.coverage_level,
        _SENTINEL if types else None,
        benefit.insurance_type,
        benefit.plan,
        benefit.time_period,
        format_x12_amount(benefit.amount) if benefit.amount is not None else None,
        format(benefit.percent, "f") if benefit.percent is not None else None,
        benefit.quantity_qualifier,
        format(benefit.quantity, "f") if benefit.quantity is not None else None,
        benefit.authorization_required,
        benefit.in_network,
    )
    if types:
        if text.count(_SENTINEL) != 1:
            raise ValueError("EB data contains a control character")
        text = text.replace(_SENTINEL, rep.join(types))
    w.raw(text)
    if benefit.dates:
        _write_dates(w, benefit.dates)
    elif (benefit.begin, benefit.end) != (member.plan_begin, member.plan_end):
        _write_dates(w, _plan_dates(benefit.begin, benefit.end))
    for message in benefit.messages:
        w.seg("MSG", message)


def _write_member(w: X12Writer, member: SubscriberEligibility) -> None:
    for trace in member.traces:
        w.seg("TRN", trace.type_code, trace.number, trace.originator_id)
    w.seg(
        "NM1",
        "03" if member.is_dependent else "IL",
        "1",
        member.last_name,
        member.first_name,
        None,
        None,
        None,
        "MI" if member.member_id and not member.is_dependent else None,
        member.member_id if not member.is_dependent else None,
    )
    _write_errors(w, member.errors)
    if member.birth_date is not None:
        w.seg("DMG", "D8", format_d8(member.birth_date), member.sex)
    _write_dates(w, member.dates or _plan_dates(member.plan_begin, member.plan_end))
    for benefit in member.benefits:
        _write_benefit(w, benefit, member)


def _write_errors(w: X12Writer, errors: Sequence[RequestError]) -> None:
    for err in errors:
        w.seg("AAA", "Y" if err.valid_request else "N", None, err.reason_code, err.follow_up)


def _write_response(w: X12Writer, resp: EligibilityResponse, created_at: datetime) -> None:
    w.seg(
        "BHT",
        "0022",
        "11",
        resp.reference,
        format_d8(resp.created or created_at.date()),
        created_at.strftime("%H%M"),
    )
    w.seg("HL", "1", None, "20", "1")
    w.seg("NM1", "PR", "2", resp.payer_name, None, None, None, None, "PI", resp.payer_id)
    _write_errors(w, [e for e in resp.errors if e.level == "source"])
    w.seg("HL", "2", "1", "21", "1" if resp.subscribers else "0")
    w.seg("NM1", "1P", "2", resp.receiver_name, None, None, None, None, "XX", resp.receiver_id)
    _write_errors(w, [e for e in resp.errors if e.level != "source"])
    number = 2
    parent = 0
    subs = resp.subscribers
    for index, member in enumerate(subs):
        number += 1
        has_children = index + 1 < len(subs) and subs[index + 1].is_dependent
        if member.is_dependent:
            if not parent:
                raise ValueError("a dependent must follow its subscriber")
            w.seg("HL", str(number), str(parent), "23", "0")
        else:
            parent = number
            w.seg("HL", str(number), "2", "22", "1" if has_children else "0")
        _write_member(w, member)


def build_271(
    responses: Sequence[EligibilityResponse],
    *,
    parties: Parties,
    control: ControlNumbers,
    created_at: datetime,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
) -> str:
    """Write ``responses`` as one interchange with one HB group, one ST..SE each.

    A member's ``dates`` are written as given; without them ``plan_begin``/``plan_end``
    become DTP*291 (RD8 when both are set). A benefit's ``dates`` likewise, and a
    benefit whose begin/end differ from its member's gets its own DTP*291.
    Dependents (``is_dependent``) are written as HL 23 under the preceding subscriber.
    """
    if not responses:
        raise ValueError("a 271 interchange needs at least one response")
    w = X12Writer(delimiters, line_break=line_break)
    env = EnvelopeWriter(w, parties, control, created_at)
    env.open("HB", IMPLEMENTATION_GUIDE)
    for resp in responses:
        env.open_set("271", IMPLEMENTATION_GUIDE)
        _write_response(w, resp, created_at)
        env.close_set()
    env.close()
    return w.getvalue()
