"""Read the facts a payer needs out of an 837P (development tool for the payer simulator;
not a production parser: it trusts structure that ``build_837p`` guarantees)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from shared.money import Cents, parse_x12_amount
from shared.x12.tokenizer import Interchange, iter_transactions, tokenize

__all__ = ["ClaimIn", "File837", "LineIn", "read_837"]


@dataclass(frozen=True, slots=True)
class LineIn:
    code: str
    modifiers: tuple[str, ...]
    charge: Cents
    units: Decimal
    dos: date | None


@dataclass(slots=True)
class ClaimIn:
    st02: str
    position: int  # CLM position in its set, ST = 1 (for 999 IK302)
    pcn: str
    total: Cents
    place_of_service: str
    frequency: str
    payer_icn: str | None  # REF*F8
    payer_id: str
    payer_name: str
    payer_responsibility: str  # SBR01 P/S/T
    filing_indicator: str  # SBR09
    provider_name: str
    provider_npi: str
    provider_tin: str
    patient_last: str
    patient_first: str
    member_id: str
    lines: list[LineIn] = field(default_factory=list)

    @property
    def first_dos(self) -> date | None:
        days = [ln.dos for ln in self.lines if ln.dos is not None]
        return min(days) if days else None

    @property
    def last_dos(self) -> date | None:
        days = [ln.dos for ln in self.lines if ln.dos is not None]
        return max(days) if days else None


@dataclass(slots=True)
class File837:
    interchange: Interchange
    reference: str  # BHT03 of the first set
    submitter_name: str
    submitter_id: str
    receiver_name: str
    receiver_id: str
    sets: dict[str, list[ClaimIn]]  # ST02 -> claims in file order

    @property
    def claims(self) -> list[ClaimIn]:
        return [c for claims in self.sets.values() for c in claims]


def _el(seg: list[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _d8(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def read_837(data: str | bytes) -> File837:
    """One interchange of 837P sets; raises ``X12SyntaxError`` on broken envelopes."""
    delims, segments = tokenize(data)
    comp = delims.component
    interchange: Interchange | None = None
    reference = ""
    names = {"41": ("", ""), "40": ("", "")}
    sets: dict[str, list[ClaimIn]] = {}
    for inter, group, tset in iter_transactions(segments):
        if interchange is None:
            interchange = inter
        elif inter is not interchange:
            raise ValueError("the simulator reads one interchange per 837 file")
        if tset.set_id != "837" or not group.version.startswith("005010X222"):
            raise ValueError(f"set {tset.control_number} is not an 837P 005010X222")
        claims = sets.setdefault(tset.control_number, [])
        provider = ("", "", "")
        sub = ("", "", "")
        sbr = ("P", "")
        payer = ("", "")
        claim: ClaimIn | None = None
        for pos, seg in enumerate(tset.segments, start=1):
            sid = seg[0]
            if sid == "BHT" and not reference:
                reference = _el(seg, 3)
            elif sid == "NM1":
                qual = _el(seg, 1)
                if qual in names:
                    names[qual] = (_el(seg, 3), _el(seg, 9))
                elif qual == "85":
                    provider = (_el(seg, 3), _el(seg, 9), "")
                elif qual == "IL":
                    sub = (_el(seg, 3), _el(seg, 4), _el(seg, 9))
                elif qual == "PR":
                    payer = (_el(seg, 3), _el(seg, 9))
            elif sid == "REF":
                if _el(seg, 1) == "EI" and claim is None:
                    provider = (provider[0], provider[1], _el(seg, 2))
                elif _el(seg, 1) == "F8" and claim is not None:
                    claim.payer_icn = _el(seg, 2)
            elif sid == "SBR":
                sbr = (_el(seg, 1) or "P", _el(seg, 9))
            elif sid == "HL":
                claim = None
            elif sid == "CLM":
                facility = _el(seg, 5).split(comp)
                claim = ClaimIn(
                    st02=tset.control_number,
                    position=pos,
                    pcn=_el(seg, 1),
                    total=parse_x12_amount(_el(seg, 2)),
                    place_of_service=facility[0],
                    frequency=facility[2] if len(facility) > 2 else "1",
                    payer_icn=None,
                    payer_id=payer[1],
                    payer_name=payer[0],
                    payer_responsibility=sbr[0],
                    filing_indicator=sbr[1],
                    provider_name=provider[0],
                    provider_npi=provider[1],
                    provider_tin=provider[2],
                    patient_last=sub[0],
                    patient_first=sub[1],
                    member_id=sub[2],
                )
                claims.append(claim)
            elif sid == "SV1" and claim is not None:
                proc = _el(seg, 1).split(comp)
                units = _el(seg, 4)
                claim.lines.append(
                    LineIn(
                        code=proc[1] if len(proc) > 1 else "",
                        modifiers=tuple(m for m in proc[2:6] if m),
                        charge=parse_x12_amount(_el(seg, 2)),
                        units=Decimal(units) if units else Decimal(1),
                        dos=None,
                    )
                )
            elif sid == "DTP" and _el(seg, 1) == "472" and claim is not None and claim.lines:
                last = claim.lines[-1]
                day = _d8(_el(seg, 3).partition("-")[0])
                claim.lines[-1] = LineIn(last.code, last.modifiers, last.charge, last.units, day)
    if interchange is None:
        raise ValueError("no 837 transaction set in the file")
    return File837(
        interchange=interchange,
        reference=reference,
        submitter_name=names["41"][0],
        submitter_id=names["41"][1],
        receiver_name=names["40"][0],
        receiver_id=names["40"][1],
        sets=sets,
    )
