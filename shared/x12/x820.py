"""820 Payroll Deducted and Other Group Premium Payment (005010X218): parse and build, for
capitation payments (domain.md §7, §10: "Accept 835 PLB CT, 820 and payer CSV reports").

What is read, per transaction set:

* BPR: BPR01 handling, BPR02 total, BPR03 credit (C) or debit (D) to the payee, BPR16 date;
* TRN: the trace (TRN02);
* N1*PE / N1*PR: payee and payer names (loop 1000A / 1000B);
* each 2000B individual remittance: ENT (ENT01 number; ENT03/ENT04 the individual's id when
  sent), NM1*IL (NM109 the member id, used when ENT04 is absent), then its 2300B remittance
  details: RMR (RMR01 qualifier, RMR02 reference, RMR04 amount paid, RMR05 amount billed)
  with DTM*582 (coverage period, RD8 or D8), and ADX adjustments (ADX01 signed amount, ADX02
  reason) that belong to the remittance detail before them (or to the individual).

Balance: BPR02 must equal the sum of RMR04 plus the sum of ADX01 (`Premium820.balanced`).
Names are parsed only to be skipped: nothing here keeps an individual's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.money import AmountError, Cents, format_x12_amount, parse_x12_amount
from shared.x12.dates import format_d8, parse_d8
from shared.x12.envelope import ControlNumbers, EnvelopeWriter, Parties
from shared.x12.tokenizer import Delimiters, X12SyntaxError, iter_transactions, tokenize
from shared.x12.writer import DEFAULT_DELIMITERS, X12Writer

__all__ = [
    "IMPLEMENTATION_GUIDE",
    "Adjustment820",
    "Individual820",
    "Premium820",
    "Remittance820",
    "build_820",
    "parse_820",
]

IMPLEMENTATION_GUIDE = "005010X218"


@dataclass(frozen=True, slots=True)
class Adjustment820:
    """ADX: a signed adjustment (negative takes money back) and its reason code."""

    amount: Cents
    reason: str


@dataclass(frozen=True, slots=True)
class Remittance820:
    """RMR with its coverage period (DTM*582) and the adjustments that follow it."""

    qualifier: str
    reference: str
    amount: Cents
    billed: Cents | None = None
    period_begin: date | None = None
    period_end: date | None = None
    adjustments: tuple[Adjustment820, ...] = ()


@dataclass(frozen=True, slots=True)
class Individual820:
    """A 2000B individual remittance; `member_id` is ENT04, else NM109."""

    number: str
    member_id: str
    remittances: tuple[Remittance820, ...] = ()
    adjustments: tuple[Adjustment820, ...] = ()  # ADX before any RMR of the individual
    segment_index: int = 0  # position of its ENT in the transaction set (for reports)


@dataclass(frozen=True, slots=True)
class Premium820:
    total: Cents
    credit: bool
    payment_date: date | None
    trace_number: str
    payer_name: str
    payee_name: str
    individuals: tuple[Individual820, ...] = field(default_factory=tuple)

    @property
    def detail_total(self) -> Cents:
        return sum(
            r.amount + sum(a.amount for a in r.adjustments)
            for i in self.individuals
            for r in i.remittances
        ) + sum(a.amount for i in self.individuals for a in i.adjustments)

    @property
    def balanced(self) -> bool:
        return self.total == self.detail_total


def _el(seg: Sequence[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _d8(text: str, where: str) -> date:
    try:
        return parse_d8(text)
    except ValueError as exc:
        raise X12SyntaxError(f"{where}: {exc}") from exc


def _amount(text: str, where: str) -> Cents:
    try:
        return parse_x12_amount(text)
    except AmountError as exc:
        raise X12SyntaxError(f"{where}: {exc}") from exc


def _period(seg: Sequence[str], where: str) -> tuple[date, date | None]:
    fmt, value = _el(seg, 5), _el(seg, 6)
    if fmt == "RD8" and "-" in value:
        begin, end = value.split("-", 1)
        return _d8(begin, where), _d8(end, where)
    if fmt == "D8":
        return _d8(value, where), None
    raise X12SyntaxError(f"{where}: DTM*582 needs D8 or RD8, got {fmt!r}")


@dataclass(slots=True)
class _Rmr:
    qualifier: str
    reference: str
    amount: Cents
    billed: Cents | None
    begin: date | None = None
    end: date | None = None
    adjustments: list[Adjustment820] = field(default_factory=list)


@dataclass(slots=True)
class _Individual:
    number: str
    member_id: str
    index: int
    remits: list[_Rmr] = field(default_factory=list)
    adjustments: list[Adjustment820] = field(default_factory=list)

    def freeze(self) -> Individual820:
        remits = tuple(
            Remittance820(
                r.qualifier, r.reference, r.amount, r.billed, r.begin, r.end, tuple(r.adjustments)
            )
            for r in self.remits
        )
        return Individual820(
            self.number, self.member_id, remits, tuple(self.adjustments), self.index
        )


def _parse_set(body: list[list[str]]) -> Premium820:
    bpr = next((s for s in body if s[0] == "BPR"), None)
    if bpr is None:
        raise X12SyntaxError("820 without BPR")
    total = _amount(_el(bpr, 2), "BPR02")
    credit = _el(bpr, 3) != "D"
    paid = _d8(_el(bpr, 16), "BPR16") if _el(bpr, 16) else None
    trace = next((_el(s, 2) for s in body if s[0] == "TRN"), "")
    names = {_el(s, 1): _el(s, 2) for s in body if s[0] == "N1"}
    individuals: list[Individual820] = []
    current: _Individual | None = None
    for index, seg in enumerate(body, start=1):
        sid = seg[0]
        if sid == "ENT":
            if current is not None:
                individuals.append(current.freeze())
            current = _Individual(_el(seg, 1), _el(seg, 4).strip(), index)
        elif current is None:
            continue
        elif sid == "NM1" and _el(seg, 1) == "IL" and not current.member_id:
            current.member_id = _el(seg, 9).strip()
        elif sid == "RMR":
            current.remits.append(
                _Rmr(
                    _el(seg, 1),
                    _el(seg, 2),
                    _amount(_el(seg, 4), f"RMR04 (segment {index})"),
                    _amount(_el(seg, 5), "RMR05") if _el(seg, 5) else None,
                )
            )
        elif sid == "DTM" and _el(seg, 1) == "582" and current.remits:
            rmr = current.remits[-1]
            rmr.begin, rmr.end = _period(seg, f"DTM*582 (segment {index})")
        elif sid == "ADX":
            adj = Adjustment820(_amount(_el(seg, 1), f"ADX01 (segment {index})"), _el(seg, 2))
            (current.remits[-1].adjustments if current.remits else current.adjustments).append(adj)
    if current is not None:
        individuals.append(current.freeze())
    return Premium820(
        total=total,
        credit=credit,
        payment_date=paid,
        trace_number=trace,
        payer_name=names.get("PR", ""),
        payee_name=names.get("PE", ""),
        individuals=tuple(individuals),
    )


def parse_820(data: str | bytes) -> list[Premium820]:
    """Every 820 transaction set in an interchange (other sets are an error)."""
    _delims, segments = tokenize(data)
    out = []
    for _, _group, tset in iter_transactions(segments):
        if tset.set_id != "820":
            raise X12SyntaxError(f"expected an 820 transaction set, got {tset.set_id}")
        out.append(_parse_set(tset.body))
    if not out:
        raise X12SyntaxError("no 820 transaction set")
    return out


# --------------------------------------------------------------------------- building


def build_820(
    payments: Sequence[Premium820],
    *,
    parties: Parties,
    control: ControlNumbers,
    created_at: datetime,
    payee_id: str = "",
    payer_id: str = "1000000000",
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    line_break: str = "",
) -> str:
    """Write `payments` as one interchange with one RA group, one ST..SE each (for tests
    and samples; passes pyx12's X218 map). `payer_id` is the originating company id (BPR10,
    TRN03, N1*PR). Individuals get no names (NM1*IL with the member id only)."""
    if not payments:
        raise ValueError("an 820 interchange needs at least one payment")
    w = X12Writer(delimiters, line_break=line_break)
    env = EnvelopeWriter(w, parties, control, created_at)
    env.open("RA", IMPLEMENTATION_GUIDE)
    for p in payments:
        env.open_set("820", IMPLEMENTATION_GUIDE)
        w.seg(
            "BPR",
            "I",
            format_x12_amount(p.total),
            "C" if p.credit else "D",
            "ACH",
            "CCP",
            None,
            None,
            None,
            None,
            payer_id,
            None,
            None,
            None,
            None,
            None,
            format_d8(p.payment_date or created_at.date()),
        )
        w.seg("TRN", "3", p.trace_number, payer_id)
        w.seg("N1", "PE", p.payee_name, "FI" if payee_id else None, payee_id or None)
        w.seg("N1", "PR", p.payer_name, "FI", payer_id)
        for ind in p.individuals:
            w.seg("ENT", ind.number, "2J", "EI", ind.member_id)
            w.seg("NM1", "IL", "1", None, None, None, None, None, "N", ind.member_id)
            for adj in ind.adjustments:
                w.seg("ADX", format_x12_amount(adj.amount), adj.reason)
            for r in ind.remittances:
                w.seg(
                    "RMR",
                    r.qualifier,
                    r.reference,
                    None,
                    format_x12_amount(r.amount),
                    format_x12_amount(r.billed) if r.billed is not None else None,
                )
                if r.period_begin is not None:
                    if r.period_end is None:
                        w.seg("DTM", "582", None, None, None, "D8", format_d8(r.period_begin))
                    else:
                        rng = f"{format_d8(r.period_begin)}-{format_d8(r.period_end)}"
                        w.seg("DTM", "582", None, None, None, "RD8", rng)
                for adj in r.adjustments:
                    w.seg("ADX", format_x12_amount(adj.amount), adj.reason)
        env.close_set()
    env.close()
    return w.getvalue()
