"""Payer simulator (a dev/test tool): deterministic, pyx12-valid, balanced answers with a
realistic denial mix, reversals with corrections, voids and replacements, and no double
adjudication or double payment across reruns."""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from devtools.payer_simulator import (
    CapitationPayment,
    GeneratedFile,
    PayerSimulator,
    SimulatorRules,
    main,
    run_mailbox,
)
from services.billing.transports import DirectoryTransport, InboundKind, OutgoingFile
from shared.x12.ack import parse_277ca, parse_999
from shared.x12.envelope import ControlNumbers
from shared.x12.validate import validate_x12
from shared.x12.x835 import ClaimPayment, Remittance, check_balance, parse_835
from shared.x12.x837p import Claim837, build_837p
from tests.unit.x12.test_837p import CREATED, JOHN, MARY, MEDICARE, RECEIVER, SUBMITTER, claim

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
QUIET = SimulatorRules(reject_999_rate=0, reject_277_rate=0, deny_rate=0, reversal_rate=0)


def _batch(prefix: str, n: int, *, per_set: int = 5000, isa13: int = 1) -> str:
    claims = [
        claim(
            f"{prefix}{i:04d}",
            subscriber=MARY if i % 3 == 0 else JOHN,
            payer=MEDICARE if i % 5 == 0 else claim().payer,
        )
        for i in range(n)
    ]
    return build(claims, per_set=per_set, isa13=isa13)


def build(claims: list[Claim837], *, per_set: int = 5000, isa13: int = 1) -> str:
    return build_837p(
        SUBMITTER,
        RECEIVER,
        claims,
        ControlNumbers(isa13, isa13, 1),
        CREATED,
        batch_reference=f"BATCH{isa13:04d}",
        max_claims_per_set=per_set,
    )


def _sim(rules: SimulatorRules, state: Path | None = None) -> PayerSimulator:
    return PayerSimulator(rules, state_path=state, now=lambda: NOW)


def _remits(files: list[GeneratedFile]) -> list[Remittance]:
    return [r for f in files if f.kind == "835" for r in parse_835(f.text)]


def _claims(files: list[GeneratedFile]) -> list[ClaimPayment]:
    return [c for r in _remits(files) for c in r.claims]


def _assert_valid_and_balanced(files: list[GeneratedFile]) -> None:
    for f in files:
        assert validate_x12(f.text) == [], f.name
    for remit in _remits(files):
        assert check_balance(remit) == []
        # BPR02 = sum(CLP04) - sum(PLB), signed by BPR03
        assert remit.net_payment == sum(c.paid for c in remit.claims) - sum(
            p.amount for p in remit.plb
        )


@pytest.fixture(scope="module")
def busy_run() -> tuple[PayerSimulator, list[GeneratedFile]]:
    rules = SimulatorRules(
        seed=11,
        reject_999_rate=0.25,
        reject_277_rate=0.1,
        deny_rate=0.3,
        reversal_rate=0.8,
        capitation=(CapitationPayment("MEMBER123", date(2026, 11, 1), 2500),),
    )
    sim = _sim(rules)
    out: list[GeneratedFile] = []
    for k in range(4):
        out += sim.adjudicate_file(f"B{k}.x12", _batch(f"F{k}C", 12, per_set=3, isa13=k + 1))
    out += sim.pay_capitation()
    return sim, out


def test_every_output_passes_pyx12_and_every_835_balances(
    busy_run: tuple[PayerSimulator, list[GeneratedFile]],
) -> None:
    sim, files = busy_run
    kinds = Counter(f.kind for f in files)
    assert (kinds["999"], kinds["277CA"]) == (4, 4)
    assert kinds["835"] >= 5  # per file and payer, plus the capitation 835
    _assert_valid_and_balanced(files)
    counts = sim.summary.counts
    for key in ("999_rejected_sets", "277:A7", "277:A2", "payer_reversals", "corrections"):
        assert counts.get(key, 0) > 0, key


def test_acknowledgments_and_payments_line_up(
    busy_run: tuple[PayerSimulator, list[GeneratedFile]],
) -> None:
    _, files = busy_run
    statuses = Counter(a.group_status for f in files if f.kind == "999" for a in parse_999(f.text))
    assert set(statuses) <= {"A", "P", "R"}
    assert statuses["P"] > 0
    acks = [c for f in files if f.kind == "277CA" for a in parse_277ca(f.text) for c in a.claims]
    accepted = {c.patient_control_number: c.payer_claim_id for c in acks if c.is_acceptance}
    rejected = {c.patient_control_number for c in acks if c.is_rejection}
    assert all(c.category == "A7" and c.status for c in acks if c.is_rejection)
    # 999-rejected sets never reach the 277CA; A7-rejected claims are never paid.
    total_claims = 4 * 12
    rejected_999 = sum(
        1 for f in files if f.kind == "999" for a in parse_999(f.text) for s in a.rejected_sets
    )
    assert len(acks) == total_claims - 3 * rejected_999
    first_pass = [c for c in _claims(files) if c.status == "1" or c.status == "2"]
    originals = {c.patient_control_number: c.payer_icn for c in first_pass}
    assert not rejected & set(originals)
    pairs = {(c.patient_control_number, c.payer_icn) for c in first_pass}
    assert accepted
    assert all(pair in pairs for pair in accepted.items())
    # CLP07 is unique per adjudication; a reversal repeats the ICN it reverses.
    icns = [c.payer_icn for c in first_pass]
    assert len(icns) == len(set(icns))
    reversed_icns = {c.payer_icn for c in _claims(files) if c.status == "22"}
    assert reversed_icns <= set(icns)


def test_same_seed_same_files_and_another_seed_differs() -> None:
    rules = SimulatorRules(seed=5, reject_999_rate=0.2, reject_277_rate=0.2, deny_rate=0.3)
    texts = [_batch("D", 20, per_set=4)]

    def run(r: SimulatorRules) -> list[tuple[str, str]]:
        sim = _sim(r)
        return [(f.name, f.text) for t in texts for f in sim.adjudicate_file("d.x12", t)]

    assert run(rules) == run(rules)
    assert run(rules) != run(replace(rules, seed=6))


def test_denial_mix_covers_the_listed_carcs() -> None:
    rules = replace(QUIET, seed=3, deny_rate=0.5, patient_responsibility_rate=0.3)
    sim = _sim(rules)
    files: list[GeneratedFile] = []
    for k in range(10):
        files += sim.adjudicate_file(f"M{k}.x12", _batch(f"M{k}X", 40, isa13=k + 1))
    _assert_valid_and_balanced(files)
    claims = _claims(files)
    assert len(claims) == 400
    seen: Counter[tuple[str, str]] = Counter()
    remarks: dict[str, set[str]] = {}
    denied = 0
    for c in claims:
        adjs = [a for ln in c.lines for a in ln.adjustments]
        if c.paid == 0:
            denied += 1
        for a in adjs:
            seen[(a.group, a.carc)] += 1
            remarks.setdefault(a.carc, set()).update(r for ln in c.lines for r in ln.remark_codes)
    for code in (("CO", "27"), ("CO", "16"), ("CO", "18"), ("CO", "29"), ("CO", "96"),
                 ("CO", "45"), ("PR", "2"), ("PR", "3")):  # fmt: skip
        assert seen[code] >= 4, (code, seen)
    assert seen[("CO", "119")] + seen[("PR", "119")] >= 4
    assert {"M51", "N290"} <= remarks["16"]
    assert remarks["96"] == {"N130"}
    assert 0.4 <= denied / len(claims) <= 0.6


def test_price_table_and_default_percentage() -> None:
    rules = replace(QUIET, patient_responsibility_rate=0, price_table={"99605": 6000})
    files = _sim(rules).adjudicate_file("p.x12", _batch("P", 1))
    (cp,) = _claims(files)
    first, second = cp.lines
    assert (first.code, first.allowed, first.paid) == ("99605", 6000, 6000)
    assert [(a.group, a.carc, a.amount) for a in first.adjustments] == [("CO", "45", 4000)]
    assert (second.code, second.allowed) == ("99607", 4000)  # 80% of the 50.00 charge
    assert cp.paid == 10000


def test_timely_filing_rule_denies_old_dates_of_service() -> None:
    files = _sim(replace(QUIET, timely_filing_days=10)).adjudicate_file("t.x12", _batch("T", 2))
    _assert_valid_and_balanced(files)
    for remit in _remits(files):  # nothing paid: a notification without money
        assert (remit.handling_code, remit.payment_method, remit.paid_amount) == ("H", "NON", 0)
    assert {a.carc for c in _claims(files) for ln in c.lines for a in ln.adjustments} == {"29"}


def test_reversal_and_correction_come_in_a_later_835() -> None:
    sim = _sim(replace(QUIET, reversal_rate=1.0))
    first = sim.adjudicate_file("R1.x12", _batch("R1X", 3, isa13=1))
    second = sim.adjudicate_file("R2.x12", _batch("R2X", 3, isa13=2))
    _assert_valid_and_balanced(first + second)
    assert not any(c.status == "22" for c in _claims(first))
    paid = {c.payer_icn: c for c in _claims(first)}
    later = _claims(second)
    reversals = [c for c in later if c.status == "22"]
    assert reversals
    for rev in reversals:
        original = paid[rev.payer_icn]
        at = later.index(rev)
        correction = later[at + 1]  # reversal first, correction right after
        assert rev.patient_control_number == original.patient_control_number
        assert (rev.charge, rev.paid) == (-original.charge, -original.paid)
        assert [a.amount for ln in rev.lines for a in ln.adjustments] == [
            -a.amount for ln in original.lines for a in ln.adjustments
        ]
        assert correction.patient_control_number == original.patient_control_number
        assert correction.payer_icn not in paid
        assert 0 < correction.paid < original.paid
    # A reversed claim is not reversed again by a third run.
    third = sim.adjudicate_file("R3.x12", _batch("R3X", 3, isa13=3))
    again = {c.payer_icn for c in _claims(third) if c.status == "22"}
    assert not again & {r.payer_icn for r in reversals}


def test_void_reverses_and_replacement_is_paid_again_under_a_new_icn() -> None:
    sim = _sim(QUIET)
    first = _claims(sim.adjudicate_file("V1.x12", _batch("V", 3, isa13=1)))
    icn = {c.patient_control_number: c.payer_icn for c in first}
    void = claim("V0000-8", frequency_code="8", payer_icn=icn["V0000"], subscriber=MARY)
    fix = claim("V0001-7", frequency_code="7", payer_icn=icn["V0001"])
    stray = claim("V0002-8", frequency_code="8", payer_icn="NOSUCHICN")
    files = sim.adjudicate_file("V2.x12", build([void, fix, stray]))
    _assert_valid_and_balanced(files)
    (ack,) = [a for f in files if f.kind == "277CA" for a in parse_277ca(f.text)]
    by_pcn = {c.patient_control_number: c for c in ack.claims}
    assert by_pcn["V0002-8"].category == "A7"  # REF*F8 names nothing we adjudicated
    assert by_pcn["V0000-8"].is_acceptance
    claims = _claims(files)
    assert [(c.patient_control_number, c.status, c.payer_icn) for c in claims] == [
        ("V0000-8", "22", icn["V0000"]),
        ("V0001-7", "22", icn["V0001"]),
        ("V0001-7", "1", by_pcn["V0001-7"].payer_claim_id),
    ]
    original = {c.payer_icn: c for c in first}
    assert claims[0].paid == -original[icn["V0000"]].paid
    assert claims[2].payer_icn not in original
    assert claims[2].paid > 0
    # Voiding the replaced claim's old ICN reverses its replacement, not the original again.
    again = sim.adjudicate_file(
        "V3.x12", build([claim("V0001-8", frequency_code="8", payer_icn=icn["V0001"])])
    )
    _assert_valid_and_balanced(again)
    (debit,) = _remits(again)  # nothing but a reversal: the provider is debited
    assert (debit.credit_debit, debit.net_payment) == ("D", -claims[2].paid)
    (rev,) = _claims(again)
    assert (rev.status, rev.payer_icn) == ("22", claims[2].payer_icn)
    # The voided claim cannot be voided twice.
    twice = sim.adjudicate_file(
        "V4.x12", build([claim("V0000-8b", frequency_code="8", payer_icn=icn["V0000"])])
    )
    assert [f.kind for f in twice] == ["999", "277CA"]


def test_a_resubmitted_claim_is_denied_as_a_duplicate() -> None:
    sim = _sim(QUIET)
    sim.adjudicate_file("X1.x12", _batch("X", 2, isa13=1))
    files = sim.adjudicate_file("X2.x12", _batch("X", 2, isa13=2))
    assert {
        (a.group, a.carc) for c in _claims(files) for ln in c.lines for a in ln.adjustments
    } == {("CO", "18")}


def _mailbox(tmp_path: Path, *names: str) -> Path:
    outbox = tmp_path / "mb" / "outbox"
    outbox.mkdir(parents=True)
    for n, name in enumerate(names, start=1):
        (outbox / name).write_text(_batch(name[:3], 6, per_set=2, isa13=n))
    (outbox / ".in-flight.tmp").write_text("ISA*partial")
    return tmp_path / "mb"


def test_mailbox_runs_never_adjudicate_or_pay_twice(tmp_path: Path) -> None:
    mailbox = _mailbox(tmp_path, "AAA1.x12", "BBB2.x12")
    rules = SimulatorRules(
        seed=2,
        reversal_rate=0.5,
        capitation=(
            CapitationPayment("MEMBER123", date(2026, 10, 1), 2500),
            CapitationPayment("MEMBER456", date(2026, 10, 1), 3000, payer_id="MCR01"),
        ),
    )
    first = run_mailbox(mailbox, rules, now=lambda: NOW)
    assert first.files_read == 2
    inbox = sorted(p.name for p in (mailbox / "inbox").iterdir())
    assert inbox == [f.name for f in first.outputs]
    assert first.counts["capitation_payments"] == 2
    contents = {p.name: p.read_text() for p in (mailbox / "inbox").iterdir()}
    _assert_valid_and_balanced([GeneratedFile(n, _kind(t), t, "") for n, t in contents.items()])
    plb = [p for r in _remits([GeneratedFile(n, _kind(t), t, "") for n, t in contents.items()])
           for p in r.plb]  # fmt: skip
    assert sorted((p.reason, p.reference, p.amount) for p in plb) == [
        ("CT", "MEMBER123", -2500),
        ("CT", "MEMBER456", -3000),
    ]
    second = run_mailbox(mailbox, rules, now=lambda: NOW)
    assert (second.files_read, second.files_skipped, second.outputs) == (0, 2, [])
    assert sorted(p.name for p in (mailbox / "inbox").iterdir()) == inbox
    # A new file is adjudicated; the old ones still are not.
    (mailbox / "outbox" / "CCC3.x12").write_text(_batch("CCC", 4, isa13=9))
    third = run_mailbox(mailbox, rules, now=lambda: NOW)
    assert (third.files_read, third.files_skipped) == (1, 2)
    assert "capitation_payments" not in third.counts
    # Rerunning from scratch reproduces the same files byte for byte.
    fresh = _mailbox(tmp_path / "again", "AAA1.x12", "BBB2.x12")
    replay = run_mailbox(fresh, rules, now=lambda: NOW)
    assert {f.name: f.text for f in replay.outputs} == contents


def _kind(text: str) -> str:
    return "835" if "ST*835*" in text else "999" if "ST*999*" in text else "277CA"


def test_unreadable_837_is_remembered_and_skipped() -> None:
    sim = _sim(QUIET)
    assert sim.adjudicate_file("junk.x12", "not an 837") == []
    assert sim.summary.counts["unreadable_files"] == 1
    assert sim.adjudicate_file("junk.x12", "not an 837") == []
    assert sim.summary.files_skipped == 1


def test_cli(tmp_path: Path) -> None:
    mailbox = _mailbox(tmp_path, "CLI1.x12")
    caps = tmp_path / "cap.csv"
    caps.write_text("member_ref,month,cents\nMEMBER123,2026-11,2500\n")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"99605": 7000}))
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            ["--mailbox", str(mailbox), "--seed", "4", "--deny-rate", "0.5",
             "--capitation", str(caps), "--prices", str(prices), "--now", NOW.isoformat()]
        )  # fmt: skip
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["files_read"] == 1
    assert report["counts"]["capitation_payments"] == 1
    assert sorted(report["outputs"]) == sorted(p.name for p in (mailbox / "inbox").iterdir())
    assert (mailbox / "simulator" / "state.json").exists()


def test_rules_reject_rates_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="deny_rate"):
        SimulatorRules(deny_rate=1.5)


async def test_answers_a_directory_transport_mailbox(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path / "mb", now=lambda: NOW)
    await transport.send(OutgoingFile("BATCH0001.x12", _batch("E", 5).encode(), "b-1"))
    summary = run_mailbox(transport.root, QUIET, now=lambda: NOW)
    inbound = await transport.fetch_inbound()
    assert [f.name for f in inbound] == [f.name for f in summary.outputs]
    assert [f.kind for f in inbound] == [
        InboundKind.ACK_999,
        InboundKind.ACK_277CA,
        InboundKind.ERA_835,
        InboundKind.ERA_835,
    ]
