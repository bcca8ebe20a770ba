"""999 (005010X231A1) and 277CA (005010X214) acknowledgments: parse and generate.

A 999 R or a 277CA A3/A4/A6/A7/A8 means the claim was never filed: the caller
must correct and resend, and the timely-filing clock keeps running. Generators
exist so a payer simulator can answer our own 837P files in tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.money import Cents, format_x12_amount, parse_x12_amount
from shared.x12.envelope import ControlNumbers, EnvelopeWriter, Parties
from shared.x12.tokenizer import (
    Delimiters,
    Interchange,
    X12SyntaxError,
    iter_transactions,
    parse_interchanges,
    tokenize,
)
from shared.x12.writer import DEFAULT_DELIMITERS, X12WriteError, X12Writer

__all__ = [
    "ACCEPTANCE_CATEGORIES",
    "REJECTION_CATEGORIES",
    "Ack277CA",
    "Ack999",
    "ClaimAck",
    "ClaimStatusInput",
    "ElementError",
    "HLevel",
    "LineAck",
    "SegmentError",
    "SetAck",
    "StatusCode",
    "StatusInfo",
    "build_277ca",
    "build_999",
    "parse_277ca",
    "parse_999",
    "status_inputs_from_837",
]

GUIDE_999 = "005010X231A1"
GUIDE_277CA = "005010X214"
REJECTION_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8"})
ACCEPTANCE_CATEGORIES = frozenset({"A1", "A2"})
# CTX01-1 values that name a business identifier (e.g. CLM01 = patient control number).
_BUSINESS_CTX = frozenset(
    {"TRN02", "NM109", "PATIENT NAME NM109", "SUBSCRIBER NAME NM109", "ENT01",
     "SUBSCRIBER NUMBER REF02", "CLM01"}
)  # fmt: skip


# ---------------------------------------------------------------- 999 model


@dataclass(frozen=True, slots=True)
class ElementError:
    """IK4: position (IK401-1), component (IK401-2), repetition (IK401-3), IK402, IK403, IK404."""

    position: int
    code: str
    component: int | None = None
    repetition: int | None = None
    element_ref: str = ""
    bad_value: str = ""


@dataclass(frozen=True, slots=True)
class SegmentError:
    """IK3 (segment id, position in the set counting ST as 1, loop id, IK304 code)."""

    segment_id: str
    position: int
    code: str
    loop_id: str = ""
    elements: tuple[ElementError, ...] = ()
    # CTX business unit, e.g. ("CLM01", "PATACCT001"), to tie the error to a claim.
    business_unit: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SetAck:
    set_id: str  # AK201
    control_number: str  # AK202 = ST02 of the acknowledged set
    status: str  # IK501: A accepted, E accepted with errors, R/M/W/X rejected
    codes: tuple[str, ...] = ()  # IK502-IK506
    version: str = ""  # AK203
    errors: tuple[SegmentError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E")


@dataclass(frozen=True, slots=True)
class Ack999:
    control_number: str  # ST02 of the 999
    functional_id: str  # AK101
    group_control_number: str  # AK102 = GS06 of the acknowledged group
    version: str  # AK103
    group_status: str  # AK901: A, E, P partial, R
    sets_included: int
    sets_received: int
    sets_accepted: int
    group_codes: tuple[str, ...]
    sets: tuple[SetAck, ...]
    interchange_control_number: str = ""

    @property
    def rejected_sets(self) -> tuple[SetAck, ...]:
        return tuple(s for s in self.sets if not s.accepted)


# ---------------------------------------------------------------- 277CA model


@dataclass(frozen=True, slots=True)
class StatusCode:
    category: str
    status: str
    entity: str = ""

    @property
    def is_rejection(self) -> bool:
        return self.category in REJECTION_CATEGORIES

    @property
    def is_acceptance(self) -> bool:
        return self.category in ACCEPTANCE_CATEGORIES


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """One STC segment: STC01 plus the optional STC10/STC11 codes, date, action, amount."""

    codes: tuple[StatusCode, ...]
    effective_date: date | None
    action_code: str
    amount_cents: Cents | None
    message: str = ""

    @property
    def is_rejection(self) -> bool:
        return any(c.is_rejection for c in self.codes)


@dataclass(frozen=True, slots=True)
class LineAck:
    procedure: str  # SVC01 as written, components joined with ':'
    charge_cents: Cents | None
    statuses: tuple[StatusInfo, ...]
    line_item_control: str = ""  # REF*FJ
    service_date: date | None = None


@dataclass(frozen=True, slots=True)
class ClaimAck:
    patient_control_number: str  # TRN02 in 2200D
    statuses: tuple[StatusInfo, ...]
    payer_claim_id: str | None = None  # REF*1K
    clearinghouse_trace: str | None = None  # REF*D9
    service_date_from: date | None = None
    service_date_to: date | None = None
    patient_last: str = ""
    patient_first: str = ""
    member_id: str = ""
    provider_id: str = ""  # 2100C NM109 (NPI when NM108 = XX)
    lines: tuple[LineAck, ...] = ()

    @property
    def codes(self) -> tuple[StatusCode, ...]:
        return tuple(c for s in self.statuses for c in s.codes)

    @property
    def category(self) -> str:
        codes = self.codes
        return codes[0].category if codes else ""

    @property
    def status(self) -> str:
        codes = self.codes
        return codes[0].status if codes else ""

    @property
    def total_cents(self) -> Cents | None:
        return self.statuses[0].amount_cents if self.statuses else None

    @property
    def is_rejection(self) -> bool:
        return any(c.is_rejection for c in self.codes)

    @property
    def is_acceptance(self) -> bool:
        return not self.is_rejection and any(c.is_acceptance for c in self.codes)


@dataclass(frozen=True, slots=True)
class HLevel:
    id: str
    parent: str
    level: str  # 20 source, 21 receiver, 19 provider, PT patient


@dataclass(frozen=True, slots=True)
class Ack277CA:
    control_number: str  # ST02
    reference: str  # BHT03
    created: date | None  # BHT04
    transaction_type: str  # BHT06 (TH = receipt acknowledgment)
    source_name: str
    source_id: str
    receipt_date: date | None  # DTP*050
    process_date: date | None  # DTP*009
    receiver_name: str
    receiver_id: str
    receiver_trace: str  # 2200B TRN02, usually our 837 BHT03
    receiver_statuses: tuple[StatusInfo, ...]
    claims: tuple[ClaimAck, ...]
    hl_levels: tuple[HLevel, ...] = ()
    interchange_control_number: str = ""

    @property
    def rejected(self) -> tuple[ClaimAck, ...]:
        return tuple(c for c in self.claims if c.is_rejection)

    @property
    def accepted(self) -> tuple[ClaimAck, ...]:
        return tuple(c for c in self.claims if c.is_acceptance)


# ---------------------------------------------------------------- parsing helpers


def _el(seg: list[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _d8(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _amount(text: str) -> Cents | None:
    return parse_x12_amount(text) if text else None


def _transactions(
    data: str | bytes, set_id: str
) -> list[tuple[Delimiters, Interchange, list[list[str]], str]]:
    delims, segments = tokenize(data)
    found = []
    for interchange, _group, tset in iter_transactions(segments):
        if tset.set_id == set_id:
            found.append((delims, interchange, tset.segments, tset.control_number))
    if not found:
        raise X12SyntaxError(f"no {set_id} transaction set in input")
    return found


# ---------------------------------------------------------------- 999 parse


def parse_999(data: str | bytes) -> list[Ack999]:
    """Every 999 transaction set in the input, in order."""
    return [_parse_one_999(*found) for found in _transactions(data, "999")]


def _parse_one_999(
    delims: Delimiters, interchange: Interchange, segments: list[list[str]], st02: str
) -> Ack999:
    comp = delims.component
    ak1: list[str] = []
    ak9: list[str] = []
    sets: list[SetAck] = []
    cur_set: dict[str, object] | None = None
    seg_errors: list[SegmentError] = []
    # The current IK3 is rebuilt as IK4/CTX arrive (dataclasses are immutable).
    cur_err: SegmentError | None = None

    def flush_err() -> None:
        nonlocal cur_err
        if cur_err is not None:
            seg_errors.append(cur_err)
            cur_err = None

    for index, seg in enumerate(segments):
        sid = seg[0]
        if sid == "AK1":
            ak1 = seg
        elif sid == "AK2":
            cur_set = {"set_id": _el(seg, 1), "cn": _el(seg, 2), "version": _el(seg, 3)}
            seg_errors = []
            cur_err = None
        elif sid == "IK3":
            flush_err()
            cur_err = SegmentError(
                segment_id=_el(seg, 1),
                position=_int_or_none(_el(seg, 2)) or 0,
                loop_id=_el(seg, 3),
                code=_el(seg, 4),
            )
        elif sid == "CTX" and cur_err is not None:
            ctx = _el(seg, 1).split(comp)
            if ctx[0] in _BUSINESS_CTX and len(ctx) > 1:
                cur_err = _replace_err(cur_err, business_unit=(ctx[0], ctx[1]))
        elif sid == "IK4" and cur_err is not None:
            pos = _el(seg, 1).split(comp)
            element = ElementError(
                position=_int_or_none(pos[0]) or 0,
                component=_int_or_none(pos[1]) if len(pos) > 1 else None,
                repetition=_int_or_none(pos[2]) if len(pos) > 2 else None,
                element_ref=_el(seg, 2),
                code=_el(seg, 3),
                bad_value=_el(seg, 4),
            )
            cur_err = _replace_err(cur_err, elements=(*cur_err.elements, element))
        elif sid == "IK5":
            if cur_set is None:
                raise X12SyntaxError("IK5 without AK2", segment_index=index)
            flush_err()
            sets.append(
                SetAck(
                    set_id=str(cur_set["set_id"]),
                    control_number=str(cur_set["cn"]),
                    version=str(cur_set["version"]),
                    status=_el(seg, 1),
                    codes=tuple(c for c in seg[2:7] if c),
                    errors=tuple(seg_errors),
                )
            )
            cur_set = None
        elif sid == "AK9":
            ak9 = seg
    if not ak1 or not ak9:
        raise X12SyntaxError(f"999 {st02} lacks AK1 or AK9")
    return Ack999(
        control_number=st02,
        functional_id=_el(ak1, 1),
        group_control_number=_el(ak1, 2),
        version=_el(ak1, 3),
        group_status=_el(ak9, 1),
        sets_included=_int_or_none(_el(ak9, 2)) or 0,
        sets_received=_int_or_none(_el(ak9, 3)) or 0,
        sets_accepted=_int_or_none(_el(ak9, 4)) or 0,
        group_codes=tuple(c for c in ak9[5:10] if c),
        sets=tuple(sets),
        interchange_control_number=interchange.control_number,
    )


def _replace_err(
    err: SegmentError,
    *,
    business_unit: tuple[str, str] | None = None,
    elements: tuple[ElementError, ...] | None = None,
) -> SegmentError:
    return SegmentError(
        segment_id=err.segment_id,
        position=err.position,
        code=err.code,
        loop_id=err.loop_id,
        elements=err.elements if elements is None else elements,
        business_unit=err.business_unit if business_unit is None else business_unit,
    )


# ---------------------------------------------------------------- 277CA parse


def _stc(seg: list[str], comp: str) -> StatusInfo:
    codes = []
    for pos in (1, 10, 11):
        raw = _el(seg, pos)
        if raw:
            parts = raw.split(comp)
            codes.append(
                StatusCode(
                    parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""
                )
            )
    return StatusInfo(
        codes=tuple(codes),
        effective_date=_d8(_el(seg, 2)),
        action_code=_el(seg, 3),
        amount_cents=_amount(_el(seg, 4)),
        message=_el(seg, 12),
    )


def _dates(seg: list[str]) -> tuple[date | None, date | None]:
    fmt, value = _el(seg, 2), _el(seg, 3)
    if fmt == "RD8" and "-" in value:
        start, _, end = value.partition("-")
        return _d8(start), _d8(end)
    day = _d8(value)
    return day, day


class _LineAcc:
    __slots__ = ("charge", "day", "proc", "ref", "statuses")

    def __init__(self, proc: str, charge: Cents | None) -> None:
        self.proc = proc
        self.charge = charge
        self.statuses: list[StatusInfo] = []
        self.ref = ""
        self.day: date | None = None

    def build(self) -> LineAck:
        return LineAck(self.proc, self.charge, tuple(self.statuses), self.ref, self.day)


class _ClaimAcc:
    __slots__ = (
        "dates", "icn", "lines", "member", "patient", "pcn", "provider", "statuses", "trace",
    )  # fmt: skip

    def __init__(self, pcn: str, patient: tuple[str, str, str], provider: str) -> None:
        self.pcn = pcn
        self.patient = patient
        self.provider = provider
        self.statuses: list[StatusInfo] = []
        self.icn: str | None = None
        self.trace: str | None = None
        self.dates: tuple[date | None, date | None] = (None, None)
        self.lines: list[LineAck] = []

    def build(self) -> ClaimAck:
        return ClaimAck(
            patient_control_number=self.pcn,
            statuses=tuple(self.statuses),
            payer_claim_id=self.icn,
            clearinghouse_trace=self.trace,
            service_date_from=self.dates[0],
            service_date_to=self.dates[1],
            patient_last=self.patient[0],
            patient_first=self.patient[1],
            member_id=self.patient[2],
            provider_id=self.provider,
            lines=tuple(self.lines),
        )


def parse_277ca(data: str | bytes) -> list[Ack277CA]:
    """Every 277 transaction set in the input, claim by claim."""
    return [_parse_one_277(*found) for found in _transactions(data, "277")]


def _parse_one_277(
    delims: Delimiters, interchange: Interchange, segments: list[list[str]], st02: str
) -> Ack277CA:
    comp = delims.component
    bht: list[str] = []
    level = ""
    hls: list[HLevel] = []
    source = ("", "")
    receiver = ("", "")
    receiver_trace = ""
    receipt: date | None = None
    processed: date | None = None
    receiver_statuses: list[StatusInfo] = []
    provider = ""
    patient = ("", "", "")
    claims: list[ClaimAck] = []
    claim: _ClaimAcc | None = None
    line: _LineAcc | None = None

    def close_line() -> None:
        nonlocal line
        if line is not None and claim is not None:
            claim.lines.append(line.build())
        line = None

    def close_claim() -> None:
        nonlocal claim
        close_line()
        if claim is not None:
            claims.append(claim.build())
        claim = None

    for seg in segments:
        sid = seg[0]
        if sid == "BHT":
            bht = seg
        elif sid == "HL":
            close_claim()
            level = _el(seg, 3)
            hls.append(HLevel(_el(seg, 1), _el(seg, 2), level))
        elif sid == "NM1":
            ident = (_el(seg, 3), _el(seg, 9))
            if level == "20":
                source = ident
            elif level == "21":
                receiver = ident
            elif level == "19":
                provider = _el(seg, 9)
            elif level == "PT":
                patient = (_el(seg, 3), _el(seg, 4), _el(seg, 9))
        elif sid == "TRN":
            if level == "21":
                receiver_trace = _el(seg, 2)
            elif level == "PT":
                close_claim()
                claim = _ClaimAcc(_el(seg, 2), patient, provider)
        elif sid == "STC":
            info = _stc(seg, comp)
            if line is not None:
                line.statuses.append(info)
            elif claim is not None:
                claim.statuses.append(info)
            elif level == "21":
                receiver_statuses.append(info)
        elif sid == "SVC" and claim is not None:
            close_line()
            line = _LineAcc(_el(seg, 1).replace(comp, ":"), _amount(_el(seg, 2)))
        elif sid == "REF":
            qual, value = _el(seg, 1), _el(seg, 2)
            if line is not None and qual == "FJ":
                line.ref = value
            elif claim is not None and qual == "1K":
                claim.icn = value
            elif claim is not None and qual == "D9":
                claim.trace = value
        elif sid == "DTP":
            qual = _el(seg, 1)
            if qual == "050":
                receipt = _d8(_el(seg, 3))
            elif qual == "009":
                processed = _d8(_el(seg, 3))
            elif qual == "472" and line is not None:
                line.day = _dates(seg)[0]
            elif qual == "472" and claim is not None:
                claim.dates = _dates(seg)
    close_claim()
    if not bht:
        raise X12SyntaxError(f"277 {st02} lacks BHT")
    return Ack277CA(
        control_number=st02,
        reference=_el(bht, 3),
        created=_d8(_el(bht, 4)),
        transaction_type=_el(bht, 6),
        source_name=source[0],
        source_id=source[1],
        receipt_date=receipt,
        process_date=processed,
        receiver_name=receiver[0],
        receiver_id=receiver[1],
        receiver_trace=receiver_trace,
        receiver_statuses=tuple(receiver_statuses),
        claims=tuple(claims),
        hl_levels=tuple(hls),
        interchange_control_number=interchange.control_number,
    )


# ---------------------------------------------------------------- 999 build


def _fmt_date(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def build_999(
    for_837: str | bytes | Interchange,
    control: ControlNumbers,
    created_at: datetime,
    *,
    rejected: Mapping[str, Sequence[SegmentError]] | None = None,
    parties: Parties | None = None,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
) -> str:
    """A 999 answering every group and set of ``for_837``.

    ``rejected`` maps ST02 to the segment errors that caused its rejection (IK5 R);
    every other set is accepted. AK9 is A, P (some rejected) or R (all rejected).
    Parties default to the 837's ISA with sender and receiver swapped.
    """
    if isinstance(for_837, Interchange):
        interchange = for_837
    else:
        interchanges = parse_interchanges(tokenize(for_837)[1])
        if len(interchanges) != 1:
            raise X12WriteError(f"expected one interchange to acknowledge, got {len(interchanges)}")
        interchange = interchanges[0]
    rejected = rejected or {}
    known = {t.control_number for g in interchange.groups for t in g.transactions}
    unknown = set(rejected) - known
    if unknown:
        raise X12WriteError(f"rejected ST02 not in the acknowledged file: {sorted(unknown)}")
    if parties is None:
        isa = interchange.isa
        parties = Parties(isa[7], isa[8].rstrip(), isa[5], isa[6].rstrip(), isa[15] or "T")
    w = X12Writer(delimiters, line_break=line_break)
    env = EnvelopeWriter(w, parties, control, created_at)
    env.open("FA", GUIDE_999)
    for group in interchange.groups:
        env.open_set("999", GUIDE_999)
        w.seg("AK1", group.functional_id, group.control_number, group.version)
        accepted = 0
        for tset in group.transactions:
            cn = tset.control_number
            version = _el(tset.segments[0], 3)
            w.seg("AK2", tset.set_id, cn, version or None)
            errors = rejected.get(cn)
            if errors is None:
                w.seg("IK5", "A")
                accepted += 1
                continue
            for err in errors:
                if len(err.loop_id) > 4:
                    # IK303 is AN 1-4: loops are reported as e.g. 2300, not 2010BA.
                    raise X12WriteError(f"IK303 loop id longer than 4: {err.loop_id!r}")
                w.seg("IK3", err.segment_id, str(err.position), err.loop_id or None, err.code)
                if err.business_unit is not None:
                    w.seg("CTX", err.business_unit)
                for el in err.elements:
                    pos = tuple(
                        str(v) if v is not None else ""
                        for v in (el.position, el.component, el.repetition)
                    )
                    w.seg("IK4", pos, el.element_ref or None, el.code, el.bad_value or None)
            # IK502 5 = one or more segments in error; 1 when nothing more specific is known.
            w.seg("IK5", "R", "5" if errors else "1")
        total = len(group.transactions)
        status = "A" if accepted == total else ("R" if accepted == 0 else "P")
        codes: tuple[str, ...] = () if status == "A" else ("5",) if status == "R" else ()
        w.seg("AK9", status, str(total), str(total), str(accepted), *codes)
        env.close_set()
    env.close()
    return w.getvalue()


# ---------------------------------------------------------------- 277CA build


@dataclass(frozen=True, slots=True)
class ClaimStatusInput:
    """What a payer reports about one claim in a 277CA."""

    patient_control_number: str
    total_cents: Cents
    category: str  # A1..A8
    status: str  # health care claim status code, e.g. 20 accepted, 21 missing/invalid
    service_date: date
    patient_last: str
    patient_first: str
    member_id: str
    provider_name: str
    provider_npi: str
    payer_icn: str | None = None
    entity: str = ""
    service_date_to: date | None = None
    clearinghouse_trace: str | None = None

    @property
    def is_rejection(self) -> bool:
        return self.category in REJECTION_CATEGORIES


@dataclass(slots=True)
class _ProviderGroup:
    name: str
    npi: str
    claims: list[ClaimStatusInput] = field(default_factory=list)


def build_277ca(
    claims: Sequence[ClaimStatusInput],
    control: ControlNumbers,
    created_at: datetime,
    *,
    payer_name: str,
    payer_id: str,
    receiver_name: str,
    receiver_id: str,
    receiver_trace: str,
    receipt_date: date,
    process_date: date,
    reference: str,
    parties: Parties | None = None,
    usage: str = "T",
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
) -> str:
    """A 277CA with one 2000C per billing provider and one 2000D/2200D per claim.

    ``receiver_trace`` is echoed in 2200B TRN02 (conventionally the 837 BHT03).
    Accepted claims get STC03 WQ, rejected ones U; the 2200B/2200C totals are computed.
    """
    if not claims:
        raise X12WriteError("a 277CA needs at least one claim")
    groups: dict[tuple[str, str], _ProviderGroup] = {}
    for c in claims:
        key = (c.provider_name, c.provider_npi)
        groups.setdefault(key, _ProviderGroup(*key)).claims.append(c)
    if parties is None:
        parties = Parties("ZZ", payer_id, "ZZ", receiver_id, usage)
    w = X12Writer(delimiters, line_break=line_break)
    env = EnvelopeWriter(w, parties, control, created_at)
    env.open("HN", GUIDE_277CA)
    env.open_set("277", GUIDE_277CA)
    today = _fmt_date(created_at.date())
    w.seg("BHT", "0085", "08", reference, today, created_at.strftime("%H%M"), "TH")
    w.seg("HL", "1", None, "20", "1")
    w.seg("NM1", "PR", "2", payer_name, None, None, None, None, "PI", payer_id)
    w.seg("TRN", "1", reference)
    w.seg("DTP", "050", "D8", _fmt_date(receipt_date))
    w.seg("DTP", "009", "D8", _fmt_date(process_date))
    w.seg("HL", "2", "1", "21", "1")
    w.seg("NM1", "41", "2", receiver_name, None, None, None, None, "46", receiver_id)
    w.seg("TRN", "2", receiver_trace)
    w.seg(
        "STC",
        ("A1", "19", "PR"),
        today,
        "WQ",
        format_x12_amount(sum(c.total_cents for c in claims)),
    )
    _totals(w, claims, ("90", "AA"))
    hl = 2
    for group in groups.values():
        hl += 1
        provider_hl = hl
        w.seg("HL", str(hl), "2", "19", "1")
        w.seg("NM1", "85", "2", group.name, None, None, None, None, "XX", group.npi)
        w.seg("TRN", "1", group.npi)
        total = sum(c.total_cents for c in group.claims)
        w.seg("STC", ("A1", "19", "PR"), None, "WQ", format_x12_amount(total))
        _totals(w, group.claims, ("QA", "QC"))
        for c in group.claims:
            hl += 1
            w.seg("HL", str(hl), str(provider_hl), "PT")
            w.seg("NM1", "QC", "1", c.patient_last, c.patient_first or None,
                  None, None, None, "MI", c.member_id)  # fmt: skip
            w.seg("TRN", "2", c.patient_control_number)
            w.seg(
                "STC",
                (c.category, c.status, c.entity),
                today,
                "U" if c.is_rejection else "WQ",
                format_x12_amount(c.total_cents),
            )
            if c.payer_icn:
                w.seg("REF", "1K", c.payer_icn)
            if c.clearinghouse_trace:
                w.seg("REF", "D9", c.clearinghouse_trace)
            if c.service_date_to and c.service_date_to != c.service_date:
                span = f"{_fmt_date(c.service_date)}-{_fmt_date(c.service_date_to)}"
                w.seg("DTP", "472", "RD8", span)
            else:
                w.seg("DTP", "472", "D8", _fmt_date(c.service_date))
    env.close_set()
    env.close()
    return w.getvalue()


def _totals(w: X12Writer, claims: Sequence[ClaimStatusInput], quals: tuple[str, str]) -> None:
    ok = [c for c in claims if not c.is_rejection]
    bad = [c for c in claims if c.is_rejection]
    if ok:
        w.seg("QTY", quals[0], str(len(ok)))
    if bad:
        w.seg("QTY", quals[1], str(len(bad)))
    if ok:
        w.seg("AMT", "YU", format_x12_amount(sum(c.total_cents for c in ok)))
    if bad:
        w.seg("AMT", "YY", format_x12_amount(sum(c.total_cents for c in bad)))


def status_inputs_from_837(
    data: str | bytes, *, category: str = "A2", status: str = "20"
) -> list[ClaimStatusInput]:
    """One ClaimStatusInput per CLM of an 837P, for simulators to adjust and answer."""
    _, segments = tokenize(data)
    out: list[ClaimStatusInput] = []
    provider = ("", "")
    patient = ("", "", "")
    pcn = ""
    total = 0
    dates: list[date] = []

    def flush() -> None:
        if pcn:
            out.append(
                ClaimStatusInput(
                    patient_control_number=pcn,
                    total_cents=total,
                    category=category,
                    status=status,
                    service_date=min(dates) if dates else date.min,
                    service_date_to=max(dates) if dates else None,
                    patient_last=patient[0],
                    patient_first=patient[1],
                    member_id=patient[2],
                    provider_name=provider[0],
                    provider_npi=provider[1],
                )
            )

    for seg in segments:
        sid = seg[0]
        if sid == "NM1":
            qual = _el(seg, 1)
            if qual == "85":
                provider = (_el(seg, 3), _el(seg, 9))
            elif qual == "IL":
                patient = (_el(seg, 3), _el(seg, 4), _el(seg, 9))
        elif sid == "CLM":
            flush()
            pcn = _el(seg, 1)
            total = parse_x12_amount(_el(seg, 2))
            dates = []
        elif sid == "DTP" and _el(seg, 1) in ("472", "434") and pcn:
            first, last = _dates(seg)
            dates.extend(d for d in (first, last) if d is not None)
        elif sid in ("SE", "HL"):
            flush()
            pcn = ""
    return out
