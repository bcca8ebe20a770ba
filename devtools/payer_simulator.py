"""Payer simulator: a DEVELOPMENT AND TEST TOOL. Not for production, never point it at real
claims or a real clearinghouse mailbox.

It plays the payer on the far side of a ``DirectoryTransport`` mailbox: reads every new
837P from ``<mailbox>/outbox``, adjudicates each claim by ``SimulatorRules`` and writes the
answers into ``<mailbox>/inbox``:

* a **999** per 837 file (whole transaction sets rejected at ``reject_999_rate``: AK9 A, P
  or R);
* a **277CA** for the claims of accepted sets (A2:20 accepted, some A1:19 received, A7
  rejections at ``reject_277_rate`` with a claim status reason; a frequency 7/8 claim whose
  REF*F8 names no claim we adjudicated is rejected A7:21 too);
* a balanced **835** per payer (one ST per payee): contracted amounts paid (``price_table``
  ``code[:modifier]`` -> allowed cents per unit, else ``default_allowed_percent`` of the
  charge), CO-45 for the rest, occasional PR-2/PR-3; a ``deny_rate`` share denied with the
  ``denials`` CARC/RARC mix (CO-27, CO-16 + M51/N290, CO-18, CO-29, CO-119/PR-119, CO-96 +
  N130); exact duplicates of a claim already adjudicated are denied CO-18;
* voids (frequency 8) are answered with a reversal (CLP02 22, negated amounts, CLP07 = the
  original ICN); replacements (7) with that reversal followed by a new adjudication under a
  new ICN; at ``reversal_rate`` the payer reverses a claim paid in an earlier 835 and
  corrects it in the same (later) 835, reversal first. Reversals triggered by a submitted
  claim carry that claim's CLM01 in CLP01; payer-initiated ones the original CLP01;
* capitation (``capitation``: member ref, month, cents) paid once each as PLB CT (negative
  amount = money to the provider) in a separate 835 per payer.

Everything is deterministic: each 837 file is adjudicated with ``random.Random`` seeded by
``seed`` and the file's sha256, and a JSON state file (``<mailbox>/simulator/state.json`` by
default) remembers processed files by content hash, issued ICNs, control numbers and paid
capitation, so reruns neither adjudicate nor pay twice.

CLI: ``python -m devtools.payer_simulator --mailbox DIR [--seed N] [--deny-rate 0.15] ...``
"""

from __future__ import annotations

import argparse
import calendar
import csv
import hashlib
import json
import os
import random
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from devtools.sim_837 import ClaimIn, File837, read_837
from devtools.sim_state import (
    ClaimRecord,
    LineRecord,
    PayeeRecord,
    PayerRecord,
    ProcessedRecord,
    SimState,
    load_state,
    save_state,
)
from shared.clock import utc_now
from shared.x12.ack import (
    ClaimStatusInput,
    ElementError,
    SegmentError,
    build_277ca,
    build_999,
    status_inputs_from_837,
)
from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.tokenizer import X12SyntaxError
from shared.x12.x835 import (
    Address,
    Adjustment,
    BankAccounts,
    ClaimPayment,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    build_835,
)

__all__ = [
    "DEFAULT_A7_REASONS",
    "DEFAULT_DENIALS",
    "CapitationPayment",
    "DenialReason",
    "GeneratedFile",
    "PayerSimulator",
    "RunSummary",
    "SimulatorRules",
    "main",
    "run_mailbox",
]


@dataclass(frozen=True, slots=True)
class DenialReason:
    """One entry of the denial mix; every line of a denied claim gets ``group-carc``."""

    key: str
    group: str
    carc: str
    rarcs: tuple[str, ...] = ()
    weight: float = 1.0


DEFAULT_DENIALS: tuple[DenialReason, ...] = (
    DenialReason("coverage_terminated", "CO", "27", weight=3),
    DenialReason("missing_information", "CO", "16", ("M51",), weight=1.5),
    DenialReason("missing_information", "CO", "16", ("N290",), weight=1.5),
    DenialReason("duplicate", "CO", "18", weight=1.5),
    DenialReason("timely_filing", "CO", "29", weight=1.5),
    DenialReason("benefit_maximum", "CO", "119", weight=1),
    DenialReason("benefit_maximum", "PR", "119", weight=1),
    DenialReason("non_covered", "CO", "96", ("N130",), weight=2),
)

# 277CA A7 rejections: (claim status code, entity) for STC01-2 / STC01-3.
DEFAULT_A7_REASONS: tuple[tuple[str, str], ...] = (
    ("21", ""),  # missing or invalid information
    ("562", "85"),  # billing provider NPI
    ("164", "IL"),  # subscriber contract/member number
    ("187", ""),  # date(s) of service
)


@dataclass(frozen=True, slots=True)
class CapitationPayment:
    """One PMPM payment. Without ``payer_id``/``payee_npi`` the first payer/payee the
    simulator has seen is used."""

    member_ref: str
    month: date  # any day of the month paid
    cents: int
    payer_id: str | None = None
    payee_npi: str | None = None


@dataclass(frozen=True, slots=True)
class SimulatorRules:
    seed: int = 0
    reject_999_rate: float = 0.02  # per transaction set
    reject_277_rate: float = 0.05  # per claim (A7)
    a1_rate: float = 0.1  # accepted claims reported A1:19 rather than A2:20
    deny_rate: float = 0.15
    denials: tuple[DenialReason, ...] = DEFAULT_DENIALS
    a7_reasons: tuple[tuple[str, str], ...] = DEFAULT_A7_REASONS
    price_table: Mapping[str, int] = field(default_factory=dict)  # allowed cents per unit
    default_allowed_percent: int = 80
    patient_responsibility_rate: float = 0.2
    copay_cents: int = 500
    coinsurance_percent: int = 20
    reversal_rate: float = 0.05  # per 835 remittance, of a claim paid in an earlier 835
    correction_percent: int = 10  # the correction pays this much less than the original
    timely_filing_days: int | None = None  # deny CO-29 when the first DOS is older
    capitation: tuple[CapitationPayment, ...] = ()
    payer_address: Address = field(
        default_factory=lambda: Address("1 SIMULATED PAYER WAY", "TESTVILLE", "NY", "12345")
    )
    payer_phone: str = "5555550100"

    def __post_init__(self) -> None:
        for name in ("reject_999_rate", "reject_277_rate", "a1_rate", "deny_rate",
                     "patient_responsibility_rate", "reversal_rate"):  # fmt: skip
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if not self.denials:
            raise ValueError("denials must not be empty")


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    name: str
    kind: str  # 999 | 277CA | 835
    text: str
    source: str  # the 837 file name, or "capitation"


@dataclass(slots=True)
class RunSummary:
    files_read: int = 0
    files_skipped: int = 0  # already adjudicated (same content hash)
    outputs: list[GeneratedFile] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def as_json(self) -> dict[str, object]:
        return {
            "files_read": self.files_read,
            "files_skipped": self.files_skipped,
            "outputs": [f.name for f in self.outputs],
            "counts": dict(sorted(self.counts.items())),
        }


_ORIGINATOR = "1999999999"
_BANK = BankAccounts("CCP", "999999992", "123456", _ORIGINATOR, "999988880", "98765")
_CLP02 = {"P": "1", "S": "2", "T": "3"}
# CLP06 takes a narrower list than SBR09: commercial (CI), Blue Cross (BL) and FEP (FI) have
# no 835 code, so they are reported as indemnity (15); anything else unknown as ZZ.
_CLP06 = frozenset(
    ["12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC", "OF",
     "TV", "VA", "WC", "ZZ"]
)  # fmt: skip
_CLP06_FROM_SBR09 = {"CI": "15", "BL": "15", "FI": "15", "11": "ZZ"}


def _clp06(sbr09: str) -> str:
    return sbr09 if sbr09 in _CLP06 else _CLP06_FROM_SBR09.get(sbr09, "ZZ")


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _safe(text: str, limit: int = 60) -> str:
    return _UNSAFE.sub("-", text).strip("-")[:limit] or "x"


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _d8(day: date | None) -> str | None:
    return f"{day:%Y%m%d}" if day else None


def _from_d8(text: str | None) -> date | None:
    return datetime.strptime(text, "%Y%m%d").date() if text else None  # noqa: DTZ007


def _pct(cents: int, percent: int | Decimal) -> int:
    return int((Decimal(cents) * Decimal(percent) / 100).to_integral_value(ROUND_HALF_UP))


# ---------------------------------------------------------------- records <-> 835 claims


def _to_record(
    cp: ClaimPayment, payer_id: str, payee_npi: str, source: str, *, denied: bool = False
) -> ClaimRecord:
    return ClaimRecord(
        icn=cp.payer_icn,
        pcn=cp.patient_control_number,
        payer_id=payer_id,
        payee_npi=payee_npi,
        status=cp.status,
        charge=cp.charge,
        paid=cp.paid,
        patient_responsibility=cp.patient_responsibility,
        filing_indicator=cp.filing_indicator,
        facility=cp.facility_code,
        frequency=cp.frequency,
        patient_last=cp.patient_last,
        patient_first=cp.patient_first,
        member_id=cp.member_id,
        lines=[
            LineRecord(
                code=ln.code,
                modifiers=list(ln.modifiers),
                charge=ln.charge,
                paid=ln.paid,
                units=str(ln.units),
                dos=_d8(ln.service_date),
                adjustments=[(a.group, a.carc, a.amount) for a in ln.adjustments],
                allowed=ln.allowed,
                remarks=list(ln.remark_codes),
            )
            for ln in cp.lines
        ],
        denied=denied,
        source_hash=source,
    )


def _reversal(rec: ClaimRecord, pcn: str, received: date) -> ClaimPayment:
    """CLP02 22: the original adjudication with every amount negated (same group codes)."""
    return ClaimPayment(
        patient_control_number=pcn,
        status="22",
        charge=-rec.charge,
        paid=-rec.paid,
        patient_responsibility=-rec.patient_responsibility,
        filing_indicator=rec.filing_indicator,
        payer_icn=rec.icn,
        facility_code=rec.facility,
        frequency=rec.frequency,
        patient_last=rec.patient_last,
        patient_first=rec.patient_first,
        member_id=rec.member_id,
        member_id_qualifier="MI",
        received_date=received,
        lines=[
            ServiceLine(
                code=ln.code,
                charge=-ln.charge,
                paid=-ln.paid,
                modifiers=tuple(ln.modifiers),
                units=Decimal(ln.units),
                service_date=_from_d8(ln.dos),
                adjustments=[Adjustment(g, c, -amt) for g, c, amt in ln.adjustments],
                allowed=-ln.allowed if ln.allowed is not None else None,
                remark_codes=list(ln.remarks),
            )
            for ln in rec.lines
        ],
    )


def _correction(rec: ClaimRecord, icn: str, percent: int, received: date) -> ClaimPayment:
    """The original re-adjudicated under a new ICN, paying ``percent`` less (more CO-45)."""
    cp = _reversal(rec, rec.pcn, received)
    lines = []
    for ln in cp.lines:
        adjustments = [Adjustment(a.group, a.carc, -a.amount) for a in ln.adjustments]
        paid = -ln.paid
        allowed = -ln.allowed if ln.allowed is not None else None
        cut = min(paid, max(1, _pct(paid, percent))) if paid > 0 else 0
        if cut:
            paid -= cut
            allowed = allowed - cut if allowed is not None else None
            for a in adjustments:
                if (a.group, a.carc) == ("CO", "45"):
                    a.amount += cut
                    break
            else:
                adjustments.append(Adjustment("CO", "45", cut))
        lines.append(
            replace(ln, charge=-ln.charge, paid=paid, allowed=allowed, adjustments=adjustments)
        )
    return replace(
        cp,
        status=rec.status,
        charge=rec.charge,
        paid=sum(ln.paid for ln in lines),
        patient_responsibility=rec.patient_responsibility,
        payer_icn=icn,
        lines=lines,
    )


# ---------------------------------------------------------------- the simulator


class PayerSimulator:
    """Adjudicates 837P files one at a time, keeping state in ``state_path`` (or memory)."""

    def __init__(
        self,
        rules: SimulatorRules | None = None,
        *,
        state_path: Path | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.rules = rules or SimulatorRules()
        self.state_path = state_path
        self.state: SimState = load_state(state_path)
        self._now = now
        self.summary = RunSummary()

    def save(self) -> None:
        save_state(self.state_path, self.state)

    def already_processed(self, data: bytes) -> bool:
        return hashlib.sha256(data).hexdigest() in self.state.processed

    # -- helpers

    def _control(self) -> ControlNumbers:
        n = self.state.next("interchange")
        return ControlNumbers(isa13=n, gs06=n, st02_start=1)

    def _icn(self) -> str:
        return f"SIM{self.state.next('icn'):011d}"

    def _name(self, kind: str, *parts: str) -> str:
        seq = self.state.next("file")
        return "_".join([f"SIM{seq:06d}", kind, *(_safe(p) for p in parts)]) + ".x12"

    def _remember_parties(self, f: File837) -> None:
        isa = f.interchange.isa
        for claim in f.claims:
            if claim.payer_id not in self.state.payers:
                self.state.payers[claim.payer_id] = PayerRecord(
                    payer_id=claim.payer_id,
                    name=claim.payer_name or claim.payer_id,
                    sender_qualifier=isa[7],
                    sender_id=isa[8].rstrip(),
                    receiver_qualifier=isa[5],
                    receiver_id=isa[6].rstrip(),
                    usage=isa[15] or "T",
                )
            self.state.payees.setdefault(
                claim.provider_npi,
                PayeeRecord(
                    npi=claim.provider_npi, name=claim.provider_name, tin=claim.provider_tin
                ),
            )
            seen = self.state.payer_payees.setdefault(claim.payer_id, [])
            if claim.provider_npi not in seen:
                seen.append(claim.provider_npi)

    def _parties(self, payer_id: str) -> Parties:
        p = self.state.payers[payer_id]
        return Parties(
            p.sender_qualifier, p.sender_id, p.receiver_qualifier, p.receiver_id, p.usage
        )

    def _remittance(
        self,
        payer_id: str,
        payee_npi: str,
        claims: list[ClaimPayment],
        plb: list[ProviderAdjustment],
    ) -> Remittance:
        net = sum(c.paid for c in claims) - sum(p.amount for p in plb)
        payee = self.state.payees[payee_npi]
        today = self._now().date()
        return Remittance(
            handling_code="C" if net > 0 else ("I" if net < 0 else "H"),
            paid_amount=abs(net),
            credit_debit="D" if net < 0 else "C",
            payment_method="NON" if net == 0 else "ACH",
            payment_date=today,
            trace_number=f"SIMEFT{self.state.next('trace'):09d}",
            trace_originator_id=_ORIGINATOR,
            payer_name=self.state.payers[payer_id].name,
            payee_name=payee.name,
            payer_id=payer_id,
            payee_id_qualifier="XX",
            payee_id=payee.npi,
            payee_tax_id=payee.tin,
            payer_address=self.rules.payer_address,
            payer_contact_name="SIMULATED PAYER",
            payer_contact_phone=self.rules.payer_phone,
            production_date=today,
            bank=_BANK if net != 0 else None,
            claims=claims,
            plb=plb,
        )

    def _build_835(
        self,
        payer_id: str,
        groups: dict[str, list[ClaimPayment]],
        plb: Mapping[str, list[ProviderAdjustment]],
        name: str,
        source: str,
    ) -> GeneratedFile:
        remits = [
            self._remittance(payer_id, npi, groups.get(npi, []), list(plb.get(npi, [])))
            for npi in sorted(set(groups) | set(plb))
        ]
        text = build_835(
            remits, parties=self._parties(payer_id), control=self._control(), created_at=self._now()
        )
        return GeneratedFile(name, "835", text, source)

    # -- adjudication

    def _price(self, code: str, modifiers: Sequence[str], units: Decimal, charge: int) -> int:
        table = self.rules.price_table
        for key in (
            ":".join((code, *modifiers)),
            f"{code}:{modifiers[0]}" if modifiers else "",
            code,
        ):
            if key and key in table:
                allowed = Decimal(table[key]) * units
                return min(charge, int(allowed.to_integral_value(ROUND_HALF_UP)))
        return _pct(charge, self.rules.default_allowed_percent)

    def _adjudicate(
        self, c: ClaimIn, icn: str, rng: random.Random, *, duplicate: bool, today: date
    ) -> tuple[ClaimPayment, str]:
        """The 835 claim and an outcome label for the summary (paid, or the denial code)."""
        rules = self.rules
        denial: DenialReason | None = None
        if duplicate:
            denial = DenialReason("duplicate", "CO", "18")
        elif (
            rules.timely_filing_days is not None
            and c.first_dos is not None
            and (today - c.first_dos).days > rules.timely_filing_days
        ):
            denial = DenialReason("timely_filing", "CO", "29")
        elif rng.random() < rules.deny_rate:
            denial = rng.choices(rules.denials, weights=[d.weight for d in rules.denials])[0]
        pr_kind = ""
        if denial is None and rng.random() < rules.patient_responsibility_rate:
            pr_kind = rng.choice(("2", "3"))
        copay_left = rules.copay_cents
        lines: list[ServiceLine] = []
        for ln in c.lines:
            adjustments: list[Adjustment] = []
            if denial is not None:
                if ln.charge:
                    adjustments.append(Adjustment(denial.group, denial.carc, ln.charge))
                lines.append(
                    ServiceLine(
                        code=ln.code,
                        charge=ln.charge,
                        paid=0,
                        modifiers=ln.modifiers,
                        units=ln.units,
                        service_date=ln.dos,
                        adjustments=adjustments,
                        remark_codes=list(denial.rarcs),
                    )
                )
                continue
            allowed = self._price(ln.code, ln.modifiers, ln.units, ln.charge)
            if ln.charge > allowed:
                adjustments.append(Adjustment("CO", "45", ln.charge - allowed))
            patient = 0
            if pr_kind == "3":
                patient = min(copay_left, allowed)
                copay_left -= patient
            elif pr_kind == "2":
                patient = _pct(allowed, rules.coinsurance_percent)
            if patient:
                adjustments.append(Adjustment("PR", pr_kind, patient))
            lines.append(
                ServiceLine(
                    code=ln.code,
                    charge=ln.charge,
                    paid=allowed - patient,
                    modifiers=ln.modifiers,
                    units=ln.units,
                    service_date=ln.dos,
                    adjustments=adjustments,
                    allowed=allowed,
                )
            )
        cp = ClaimPayment(
            patient_control_number=c.pcn,
            status=_CLP02.get(c.payer_responsibility, "1"),
            charge=sum(ln.charge for ln in lines),
            paid=sum(ln.paid for ln in lines),
            patient_responsibility=sum(
                a.amount for ln in lines for a in ln.adjustments if a.group == "PR"
            ),
            filing_indicator=_clp06(c.filing_indicator),
            payer_icn=icn,
            facility_code=c.place_of_service,
            frequency=c.frequency,
            patient_last=c.patient_last,
            patient_first=c.patient_first,
            member_id=c.member_id,
            member_id_qualifier="MI",
            received_date=today,
            lines=lines,
        )
        label = f"denied:{denial.group}-{denial.carc}" if denial else "paid"
        return cp, label

    def adjudicate_file(self, name: str, data: bytes | str) -> list[GeneratedFile]:
        """999, 277CA and 835 files answering one 837P; [] when it was already processed."""
        raw = data.encode() if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        summary = self.summary
        if digest in self.state.processed:
            summary.files_skipped += 1
            return []
        summary.files_read += 1
        try:
            f = read_837(raw)
        except (X12SyntaxError, ValueError) as exc:
            # A real payer would answer with a TA1; the billing side sees nothing come back.
            self.state.processed[digest] = ProcessedRecord(
                file=name, claims=0, error=str(exc)[:300]
            )
            summary.add("unreadable_files")
            return []
        rng = random.Random(f"{self.rules.seed}:{digest}")  # noqa: S311 - simulation, not crypto
        now = self._now()
        today = now.date()
        stem = Path(name).stem
        self._remember_parties(f)
        outputs: list[GeneratedFile] = []

        # 999: whole transaction sets rejected
        rejected: dict[str, list[SegmentError]] = {}
        for st02, claims in f.sets.items():
            if claims and rng.random() < self.rules.reject_999_rate:
                first = claims[0]
                rejected[st02] = [
                    SegmentError(
                        "CLM",
                        first.position,
                        "8",
                        "2300",
                        elements=(ElementError(5, "7", 3, None, "1325", first.frequency),),
                        business_unit=("CLM01", first.pcn),
                    )
                ]
                summary.add("999_rejected_sets")
                summary.add("999_rejected_claims", len(claims))
        text = build_999(f.interchange, self._control(), now, rejected=rejected)
        outputs.append(GeneratedFile(self._name("999", stem), "999", text, name))

        # 277CA: claims of accepted sets
        accepted = [c for st02, claims in f.sets.items() if st02 not in rejected for c in claims]
        statuses = {s.patient_control_number: s for s in status_inputs_from_837(raw)}
        answers: list[ClaimStatusInput] = []
        to_pay: list[tuple[ClaimIn, str]] = []
        for c in accepted:
            target = self.state.live(c.payer_icn) if c.payer_icn else None
            if c.frequency in ("7", "8") and target is None:
                category, status, entity, icn = "A7", "21", "", None
            elif rng.random() < self.rules.reject_277_rate:
                status, entity = rng.choice(self.rules.a7_reasons)
                category, icn = "A7", None
            else:
                icn = self._icn()
                category, status, entity = (
                    ("A1", "19", "PR") if rng.random() < self.rules.a1_rate else ("A2", "20", "")
                )
                to_pay.append((c, icn))
            summary.add(f"277:{category}")
            answers.append(
                replace(
                    statuses[c.pcn],
                    category=category,
                    status=status,
                    entity=entity,
                    payer_icn=icn,
                )
            )
        if answers:
            isa = f.interchange.isa
            text = build_277ca(
                answers,
                self._control(),
                now,
                payer_name=f.receiver_name or "SIMULATED PAYER",
                payer_id=f.receiver_id or isa[8].rstrip(),
                receiver_name=f.submitter_name or "SUBMITTER",
                receiver_id=f.submitter_id or isa[6].rstrip(),
                receiver_trace=f.reference or "NONE",
                receipt_date=today,
                process_date=today,
                reference=f"SIM277{self.state.counters.get('interchange', 0)}",
                parties=Parties(isa[7], isa[8].rstrip(), isa[5], isa[6].rstrip(), isa[15] or "T"),
            )
            outputs.append(GeneratedFile(self._name("277CA", stem), "277CA", text, name))

        # 835: per payer, one remittance per payee
        by_payer: dict[str, dict[str, list[ClaimPayment]]] = {}

        def add(payer_id: str, payee_npi: str, cp: ClaimPayment) -> None:
            by_payer.setdefault(payer_id, {}).setdefault(payee_npi, []).append(cp)

        new_records: list[ClaimRecord] = []
        standing = {(r.pcn, r.payer_id) for r in self.state.claims.values() if not r.reversed}
        for c, icn in to_pay:
            target = self.state.live(c.payer_icn) if c.payer_icn else None
            if c.frequency in ("7", "8") and target is not None:
                add(target.payer_id, target.payee_npi, _reversal(target, c.pcn, today))
                target.reversed = True
                summary.add("reversals")
                if c.frequency == "8":
                    summary.add("voids")
                    continue
                target.replaced_by = icn
                summary.add("replacements")
            duplicate = c.frequency == "1" and (c.pcn, c.payer_id) in standing
            cp, label = self._adjudicate(c, icn, rng, duplicate=duplicate, today=today)
            summary.add(label)
            add(c.payer_id, c.provider_npi, cp)
            new_records.append(
                _to_record(cp, c.payer_id, c.provider_npi, digest, denied=label != "paid")
            )

        # an occasional payer-initiated reversal of an earlier payment, corrected right after
        for payer_id in sorted(by_payer):
            if rng.random() >= self.rules.reversal_rate:
                continue
            candidates = sorted(
                (
                    r
                    for r in self.state.claims.values()
                    if r.payer_id == payer_id
                    and not r.reversed
                    and not r.replaced_by
                    and not r.denied
                    and r.paid > 0
                    and r.source_hash != digest
                ),
                key=lambda r: r.icn,
            )
            if not candidates:
                continue
            old = rng.choice(candidates)
            icn = self._icn()
            fix = _correction(old, icn, self.rules.correction_percent, today)
            add(payer_id, old.payee_npi, _reversal(old, old.pcn, today))
            add(payer_id, old.payee_npi, fix)
            old.reversed = True
            old.replaced_by = icn
            new_records.append(_to_record(fix, payer_id, old.payee_npi, digest))
            summary.add("payer_reversals")
            summary.add("corrections")

        for record in new_records:
            self.state.claims[record.icn] = record
        for payer_id in sorted(by_payer):
            outputs.append(
                self._build_835(
                    payer_id, by_payer[payer_id], {}, self._name("835", payer_id, stem), name
                )
            )
        self.state.processed[digest] = ProcessedRecord(
            file=name, claims=len(f.claims), outputs=[o.name for o in outputs]
        )
        summary.outputs.extend(outputs)
        return outputs

    def pay_capitation(self) -> list[GeneratedFile]:
        """PLB CT payments not yet made, one 835 per payer; unresolvable ones stay pending."""
        paid = set(self.state.capitation_paid)
        plb: dict[str, dict[str, list[ProviderAdjustment]]] = {}
        keys: list[str] = []
        for entry in self.rules.capitation:
            payer_id = entry.payer_id or next(iter(sorted(self.state.payers)), None)
            if payer_id is None or payer_id not in self.state.payers:
                self.summary.add("capitation_pending")
                continue
            key = f"{payer_id}|{entry.member_ref}|{entry.month:%Y-%m}"
            if key in paid or key in keys:
                continue
            payees = self.state.payer_payees.get(payer_id) or sorted(self.state.payees)
            payee = entry.payee_npi or (payees[0] if payees else None)
            if payee is None or payee not in self.state.payees:
                self.summary.add("capitation_pending")
                continue
            plb.setdefault(payer_id, {}).setdefault(payee, []).append(
                ProviderAdjustment(
                    payee, _month_end(entry.month), "CT", -entry.cents, entry.member_ref
                )
            )
            keys.append(key)
            self.summary.add("capitation_payments")
        outputs = [
            self._build_835(
                payer_id, {}, plb[payer_id], self._name("835", payer_id, "capitation"), "capitation"
            )
            for payer_id in sorted(plb)
        ]
        self.state.capitation_paid.extend(keys)
        self.summary.outputs.extend(outputs)
        return outputs


# ---------------------------------------------------------------- mailbox runner and CLI


def _write_atomic(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, directory / name)


def run_mailbox(
    mailbox: Path,
    rules: SimulatorRules | None = None,
    *,
    state_dir: Path | None = None,
    now: Callable[[], datetime] = utc_now,
) -> RunSummary:
    """Adjudicate every new 837 in ``mailbox/outbox`` and write the answers to ``inbox``.

    State is saved after each 837 file, once its answers are in the inbox.
    """
    state_path = (state_dir or mailbox / "simulator") / "state.json"
    sim = PayerSimulator(rules, state_path=state_path, now=now)
    inbox = mailbox / "inbox"
    outbox = mailbox / "outbox"
    paths = (
        sorted(p for p in outbox.iterdir() if p.is_file() and not p.name.startswith("."))
        if outbox.is_dir()
        else []
    )
    for path in paths:
        for out in sim.adjudicate_file(path.name, path.read_bytes()):
            _write_atomic(inbox, out.name, out.text)
        sim.save()
    for out in sim.pay_capitation():
        _write_atomic(inbox, out.name, out.text)
    sim.save()
    return sim.summary


def _load_prices(path: Path) -> dict[str, int]:
    """JSON ``{"99605": 7500, "99605:95": 7000}`` or CSV ``code,cents`` (cents per unit)."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        raw = json.loads(text)
        return {str(k): int(v) for k, v in raw.items()}
    return {
        row[0].strip(): int(row[1])
        for row in csv.reader(text.splitlines())
        if row and row[0].strip() and row[1].strip().isdigit()
    }


def _load_capitation(path: Path) -> tuple[CapitationPayment, ...]:
    """CSV ``member_ref,YYYY-MM,cents[,payer_id[,payee_npi]]`` (a header line is skipped)."""
    out = []
    for row in csv.reader(path.read_text().splitlines()):
        if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
            continue
        month = datetime.strptime(row[1].strip()[:7], "%Y-%m").date()  # noqa: DTZ007
        payer = row[3].strip() if len(row) > 3 and row[3].strip() else None
        payee = row[4].strip() if len(row) > 4 and row[4].strip() else None
        out.append(CapitationPayment(row[0].strip(), month, int(row[2]), payer, payee))
    return tuple(out)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.payer_simulator",
        description="Payer simulator (DEVELOPMENT/TEST TOOL, not for production): answers the "
        "837P files in MAILBOX/outbox with 999, 277CA and 835 files in MAILBOX/inbox.",
    )
    parser.add_argument("--mailbox", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deny-rate", type=float, default=0.15)
    parser.add_argument("--reject-999-rate", type=float, default=0.02)
    parser.add_argument("--reject-277-rate", type=float, default=0.05)
    parser.add_argument("--reversal-rate", type=float, default=0.05)
    parser.add_argument("--pr-rate", type=float, default=0.2, help="patient responsibility share")
    parser.add_argument("--allowed-percent", type=int, default=80)
    parser.add_argument("--timely-filing-days", type=int, default=None)
    parser.add_argument("--prices", type=Path, default=None, help="JSON or CSV code -> cents")
    parser.add_argument("--capitation", type=Path, default=None, help="CSV member,YYYY-MM,cents")
    parser.add_argument("--now", default=None, help="ISO timestamp to stamp files with")
    args = parser.parse_args(list(argv) if argv is not None else None)
    rules = SimulatorRules(
        seed=args.seed,
        deny_rate=args.deny_rate,
        reject_999_rate=args.reject_999_rate,
        reject_277_rate=args.reject_277_rate,
        reversal_rate=args.reversal_rate,
        patient_responsibility_rate=args.pr_rate,
        default_allowed_percent=args.allowed_percent,
        timely_filing_days=args.timely_filing_days,
        price_table=_load_prices(args.prices) if args.prices else {},
        capitation=_load_capitation(args.capitation) if args.capitation else (),
    )
    fixed = datetime.fromisoformat(args.now) if args.now else None
    summary = run_mailbox(
        args.mailbox,
        rules,
        state_dir=args.state_dir,
        now=(lambda: fixed) if fixed else utc_now,
    )
    print(json.dumps(summary.as_json(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
