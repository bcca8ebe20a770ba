"""837P / 999 / 277CA throughput versus pyx12 validation, in one run.

.venv/bin/python bench/bench_x12_837p.py [claims]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.x12.ack import (
    ElementError,
    SegmentError,
    build_277ca,
    build_999,
    parse_277ca,
    parse_999,
    status_inputs_from_837,
)
from shared.x12.envelope import ControlNumbers
from shared.x12.tokenizer import iter_transactions, tokenize
from shared.x12.validate import validate_x12
from shared.x12.x837p import (
    BillingProvider,
    Claim837,
    ClaimLine,
    Payer,
    Receiver,
    RenderingProvider,
    Submitter,
    Subscriber,
    build_837p_batch,
)

T = TypeVar("T")
CREATED = datetime(2026, 11, 20, 12, 0)


def make_claims(n: int) -> list[Claim837]:
    providers = [
        BillingProvider(f"PHARMACY {i}", "1234567893", "123456789", f"{i} MAIN ST", "ANYTOWN",
                        "NY", "123451234", "3336C0003X")
        for i in range(20)
    ]  # fmt: skip
    payers = [Payer("ACME HEALTH PLAN", "PAYER01"), Payer("MEDICARE PART B", "MCR01")]
    rendering = RenderingProvider("SMITH", "ANNA", "1245319599", "183500000X")
    subscribers = [
        Subscriber(f"LAST{i}", "PAT", f"MEM{i:06d}", "1 OAK ST", "ANYTOWN", "NY", "12345",
                   date(1950 + i % 40, 1 + i % 12, 1 + i % 28), "F" if i % 2 else "M", "GRP1")
        for i in range(n // 2 + 1)
    ]  # fmt: skip
    claims = []
    for i in range(n):
        dos = date(2026, 10, 1 + i % 28)
        lines = (
            ClaimLine("99605", 10000, 1, dos, ("95",) if i % 5 == 0 else (), (1, 2)),
            ClaimLine("99607", 5000 * (1 + i % 2), 1 + i % 2, dos, (), (1,)),
        )
        claims.append(
            Claim837(
                patient_control_number=f"PCN{i:08d}",
                total_cents=sum(line.charge_cents for line in lines),
                place_of_service="10" if i % 5 == 0 else "01",
                frequency_code="7" if i % 50 == 0 else "1",
                payer_icn=f"ICN{i:08d}" if i % 50 == 0 else None,
                diagnoses=("E119", "I10", "E785"),
                lines=lines,
                billing_provider=providers[i % 20],
                subscriber=subscribers[i // 2],
                payer=payers[(i // 2) % 2],
                rendering=rendering,
            )
        )
    return claims


def timed(fn: Callable[[], T], repeat: int = 3) -> tuple[T, float]:
    best = float("inf")
    result: T
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    claims = make_claims(n)
    submitter = Submitter("ACME PHARMACY BILLING", "SUBMIT001", "JANE DOE", "5555551234")
    receiver = Receiver("ACME HEALTH PLAN", "RECEIVE01")
    control = ControlNumbers(1, 1, 1)

    built, t_build = timed(
        lambda: build_837p_batch(
            submitter, receiver, claims, control, CREATED, batch_reference="B1"
        )
    )
    text = built.text
    _, t_tok = timed(lambda: tokenize(text))
    _, t_env = timed(lambda: list(iter_transactions(tokenize(text)[1])))

    # A 999 answers per ST, so acknowledge a file with one claim per set: 10,000 AK2/IK5.
    per_set = build_837p_batch(
        submitter, receiver, claims, control, CREATED, batch_reference="B1", max_claims_per_set=1
    )
    error = SegmentError("CLM", 18, "8", "2300", (ElementError(2, "7", element_ref="782"),))
    rejected = {st02: [error] for st02 in list(per_set.claims_by_set)[::10]}
    ack999 = build_999(per_set.text, ControlNumbers(3, 3, 1), CREATED, rejected=rejected)
    parsed999, t_999 = timed(lambda: parse_999(ack999))
    assert len(parsed999[0].sets) == n
    assert len(parsed999[0].rejected_sets) == len(rejected)

    inputs = status_inputs_from_837(text)
    ack277 = build_277ca(
        inputs, ControlNumbers(4, 4, 1), CREATED, payer_name="ACME HEALTH PLAN",
        payer_id="PAYER01", receiver_name="ACME PHARMACY BILLING", receiver_id="SUBMIT001",
        receiver_trace="B1", receipt_date=date(2026, 11, 20), process_date=date(2026, 11, 20),
        reference="R1",
    )  # fmt: skip
    parsed277, t_277 = timed(lambda: parse_277ca(ack277))
    assert len(parsed277[0].claims) == n

    # pyx12 on a subset (it takes seconds per thousand claims); scale per claim.
    subset_n = min(n, 1_000)
    subset = build_837p_batch(
        submitter, receiver, claims[:subset_n], control, CREATED, batch_reference="B1"
    ).text
    start = time.perf_counter()
    errors = validate_x12(subset)
    t_pyx12 = time.perf_counter() - start
    assert errors == [], errors[:5]
    assert validate_x12(build_999(subset, ControlNumbers(5, 5, 1), CREATED)) == []

    pyx12_rate = subset_n / t_pyx12
    mb = len(text) / 1e6
    print(f"claims: {n:,}   837P size: {mb:.1f} MB, {built.segment_count:,} segments, "
          f"{len(built.claims_by_set)} ST sets")  # fmt: skip
    print(f"{'step':<34}{'seconds':>10}{'claims/s':>14}{'x pyx12':>10}")
    rows = [
        ("build 837P (text)", t_build, n),
        ("tokenize 837P", t_tok, n),
        ("tokenize + envelope check", t_env, n),
        ("parse 999 (one AK2 per claim)", t_999, n),
        ("parse 277CA", t_277, n),
        (f"pyx12 validate 837P ({subset_n:,} claims)", t_pyx12, subset_n),
    ]
    for name, seconds, count in rows:
        rate = count / seconds
        print(f"{name:<34}{seconds:>10.3f}{rate:>14,.0f}{rate / pyx12_rate:>10.0f}")
    status = "OK" if n / t_build >= 20_000 else "BELOW TARGET"
    print(f"837P build target >= 20,000 claims/s: {status}")


if __name__ == "__main__":
    main()
