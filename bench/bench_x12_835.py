"""Benchmark: parse + balance a 10,000-claim 835 vs pyx12 validation of the same claims.

Run: .venv/bin/python bench/bench_x12_835.py [--claims N] [--pyx12-claims M]

pyx12 is validated on an M-claim file built the same way and its rate is reported per
claim, so the ratio compares like with like without waiting minutes for pyx12.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.tokenizer import iter_transactions, tokenize
from shared.x12.validate import validate_x12
from shared.x12.x835 import (
    Address,
    Adjustment,
    BankAccounts,
    ClaimPayment,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    build_835,
    check_balance,
    parse_835,
)

NPI = "1234567893"
FEES = {"99605": 10000, "99606": 7500, "99607": 5000}


def _line(rng: random.Random, code: str, units: int) -> ServiceLine:
    charge = FEES[code] * units
    dos = date(2026, 10, 1 + rng.randrange(30))
    if rng.random() < 0.08:  # denial: prior authorization absent
        return ServiceLine(
            code=code,
            charge=charge,
            paid=0,
            units=Decimal(units),
            service_date=dos,
            adjustments=[Adjustment("CO", "197", charge)],
            remark_codes=["N54"],
        )
    allowed = charge * rng.choice((70, 80, 85, 90)) // 100
    copay = rng.choice((0, 0, 500, 1000))
    coins = rng.randrange(0, allowed // 5) if rng.random() < 0.3 else 0
    adjs = [Adjustment("CO", "45", charge - allowed)]
    if copay:
        adjs.append(Adjustment("PR", "3", copay))
    if coins:
        adjs.append(Adjustment("PR", "2", coins))
    return ServiceLine(
        code=code,
        charge=charge,
        paid=allowed - copay - coins,
        units=Decimal(units),
        service_date=dos,
        adjustments=adjs,
        allowed=allowed,
    )


def make_remittance(n_claims: int, seed: int = 835) -> Remittance:
    rng = random.Random(seed)
    claims = []
    for i in range(n_claims):
        lines = [_line(rng, rng.choice(("99605", "99606")), 1)]
        if rng.random() < 0.5:
            lines.append(_line(rng, "99607", rng.randint(1, 3)))
        pr = sum(a.amount for x in lines for a in x.adjustments if a.group == "PR")
        claims.append(
            ClaimPayment(
                patient_control_number=f"PCN{i:07d}",
                status="1",
                charge=sum(x.charge for x in lines),
                paid=sum(x.paid for x in lines),
                patient_responsibility=pr,
                filing_indicator="MC",
                payer_icn=f"26{i:010d}",
                facility_code="01",
                frequency="1",
                patient_last="DOE",
                patient_first=f"PAT{i % 997}",
                member_id=f"M{rng.randrange(10**8):08d}",
                lines=lines,
            )
        )
    plb = [ProviderAdjustment(NPI, date(2026, 12, 31), "WO", 2500, "26REFUND01")]
    net = sum(c.paid for c in claims) - sum(p.amount for p in plb)
    return Remittance(
        handling_code="I",
        paid_amount=abs(net),
        credit_debit="C" if net >= 0 else "D",
        payment_method="ACH",
        payment_date=date(2026, 11, 25),
        trace_number="EFT0001",
        trace_originator_id="1512345678",
        payer_name="ACME HEALTH PLAN",
        payee_name="ACME PHARMACY",
        payee_id_qualifier="XX",
        payee_id=NPI,
        payer_address=Address("1 PAYER WAY", "PAYERTOWN", "NY", "12345"),
        payer_contact_phone="5555550000",
        bank=BankAccounts("CCP", "999999992", "123456", "1512345678", "999988880", "98765"),
        claims=claims,
        plb=plb,
    )


def build(n_claims: int) -> str:
    return build_835(
        [make_remittance(n_claims)],
        parties=Parties("ZZ", "PAYER01", "ZZ", "SUBMIT001"),
        control=ControlNumbers(1, 1, 1),
        created_at=datetime(2026, 11, 25, 9, 0),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=10_000)
    ap.add_argument("--pyx12-claims", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    text = build(args.claims)
    segments = text.count("~")
    print(f"835: {args.claims} claims, {segments} segments, {len(text) / 1e6:.1f} MB")

    runs = []
    for _ in range(args.repeat):  # the first run has cold amount/date caches
        t0 = time.perf_counter()
        remits = parse_835(text)
        errors = [e for r in remits for e in check_balance(r)]
        runs.append(time.perf_counter() - t0)
        assert not errors, errors[:3]
        assert sum(len(r.claims) for r in remits) == args.claims
    gc.disable()  # parse_835 pauses the collector too; time the tokenizer the same way
    t0 = time.perf_counter()
    _, segs = tokenize(text)
    list(iter_transactions(segs))
    tok = time.perf_counter() - t0
    gc.enable()
    ours = args.claims / min(runs)
    print(
        f"tokenize+parse+balance : first {runs[0]:.3f} s, best {min(runs):.3f} s"
        f" -> {args.claims / runs[0]:,.0f} / {ours:,.0f} claims/s"
    )
    print(f"  of which tokenize+envelope: {tok:.3f} s")

    small = build(args.pyx12_claims)
    t0 = time.perf_counter()
    problems = validate_x12(small)
    took = time.perf_counter() - t0
    assert not problems, problems[:3]
    theirs = args.pyx12_claims / took
    print(
        f"pyx12 validation       : {took:.2f} s for {args.pyx12_claims} claims -> {theirs:,.0f} claims/s"
        f" (~{args.claims / theirs:.1f} s projected for {args.claims})"
    )
    print(f"ratio ours/pyx12       : {ours / theirs:.1f}x")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS (ru_maxrss)   : {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
