"""Clearinghouse transports: the directory mailbox, inbound kind detection and the retry
policy (backoff bounds are properties, checked with hypothesis)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.payer_simulator import PayerSimulator, SimulatorRules
from services.billing.transports import (
    DirectoryTransport,
    FileConflictError,
    InboundFile,
    InboundKind,
    OutgoingFile,
    PermanentTransportError,
    RetryPolicy,
    SendReceipt,
    TransientTransportError,
    Transport,
    detect_kind,
    parse_auth_header,
    send_with_retry,
)
from tests.unit.x12.test_837p import build, claim

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _837(pcn: str = "PCN1") -> bytes:
    return build([claim(pcn)]).encode()


def _answers() -> dict[str, bytes]:
    """A 999, a 277CA and an 835 answering one 837 (the payer simulator writes them)."""
    sim = PayerSimulator(
        SimulatorRules(reject_999_rate=0, reject_277_rate=0, reversal_rate=0),
        now=lambda: NOW,
    )
    return {f.kind: f.text.encode() for f in sim.adjudicate_file("b.x12", _837())}


# ---------------------------------------------------------------- value types


def test_outgoing_file_hashes_and_checks_its_content() -> None:
    f = OutgoingFile("B1.x12", b"abc", "batch-1")
    assert f.content_hash == hashlib.sha256(b"abc").hexdigest()
    assert OutgoingFile("B1.x12", b"abc", "batch-1", f.content_hash) == f
    with pytest.raises(ValueError, match="content_hash"):
        OutgoingFile("B1.x12", b"abd", "batch-1", f.content_hash)
    for bad in ("../etc/passwd", ".hidden", "a/b", "", "x" * 201, "sp ace"):
        with pytest.raises(ValueError, match="file name"):
            OutgoingFile(bad, b"abc", "batch-1")


def test_detect_kind_reads_st01_and_the_277ca_guide() -> None:
    answers = _answers()
    assert detect_kind(answers["999"]) is InboundKind.ACK_999
    assert detect_kind(answers["277CA"]) is InboundKind.ACK_277CA
    assert detect_kind(answers["835"]) is InboundKind.ERA_835
    # A 277 that is not the X214 claim acknowledgment (e.g. a 276/277 status response).
    other_277 = answers["277CA"].replace(b"005010X214", b"005010X212")
    assert detect_kind(other_277) is InboundKind.UNKNOWN
    assert detect_kind(_837()) is InboundKind.UNKNOWN
    assert detect_kind(b"not x12 at all") is InboundKind.UNKNOWN
    assert detect_kind(b"") is InboundKind.UNKNOWN


def test_parse_auth_header() -> None:
    assert parse_auth_header("Authorization: Bearer a:b") == ("Authorization", "Bearer a:b")
    with pytest.raises(ValueError, match="Name: value"):
        parse_auth_header("Bearer abc")


# ---------------------------------------------------------------- directory mailbox


def _transport(tmp_path: Path) -> DirectoryTransport:
    return DirectoryTransport(tmp_path / "mailbox", now=lambda: NOW)


async def test_directory_send_is_atomic_and_idempotent(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    content = _837()
    receipt = await t.send(OutgoingFile("BATCH0001.x12", content, "b-1"))
    assert receipt == SendReceipt(
        "BATCH0001.x12",
        "b-1",
        hashlib.sha256(content).hexdigest(),
        "directory",
        "outbox/BATCH0001.x12",
    )
    assert (t.outbox / "BATCH0001.x12").read_bytes() == content
    again = await t.send(OutgoingFile("BATCH0001.x12", content, "b-1"))
    assert again.already_present
    assert sorted(p.name for p in t.outbox.iterdir()) == ["BATCH0001.x12"]  # no temp files left
    with pytest.raises(FileConflictError, match="different content"):
        await t.send(OutgoingFile("BATCH0001.x12", _837("OTHER"), "b-2"))
    assert (t.outbox / "BATCH0001.x12").read_bytes() == content


async def test_directory_concurrent_sends_of_one_file_write_one_copy(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    f = OutgoingFile("BATCH0002.x12", _837(), "b-2")
    receipts = await asyncio.gather(*(t.send(f) for _ in range(8)))
    assert sum(not r.already_present for r in receipts) == 1
    assert [p.name for p in t.outbox.iterdir()] == ["BATCH0002.x12"]


async def test_directory_inbox_archive_and_quarantine_round_trip(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    t.ensure_dirs()
    for n, (kind, data) in enumerate(sorted(_answers().items())):
        (t.inbox / f"{n}_{kind}.x12").write_bytes(data)
    (t.inbox / "9_garbage.txt").write_bytes(b"hello")
    (t.inbox / ".partial.tmp").write_bytes(b"ISA")  # still being written by the far side
    files = await t.fetch_inbound()
    kinds = {f.name: f.kind for f in files}
    assert kinds == {
        "0_277CA.x12": InboundKind.ACK_277CA,
        "1_835.x12": InboundKind.ERA_835,
        "2_999.x12": InboundKind.ACK_999,
        "9_garbage.txt": InboundKind.UNKNOWN,
    }
    by_name = {f.name: f for f in files}
    for name in ("0_277CA.x12", "1_835.x12", "2_999.x12"):
        await t.mark_processed(by_name[name])
        await t.mark_processed(by_name[name])  # repeatable after a crash
    archived = t.archive / "2026-11-25"
    assert sorted(p.name for p in archived.iterdir()) == ["0_277CA.x12", "1_835.x12", "2_999.x12"]
    await t.quarantine(by_name["9_garbage.txt"], ["not X12: no ISA", "kind unknown"])
    assert (t.quarantine_dir / "9_garbage.txt").read_bytes() == b"hello"
    reason = (t.quarantine_dir / "9_garbage.txt.reason.txt").read_text()
    assert reason == "not X12: no ISA\nkind unknown\n"
    assert [f.name for f in await t.fetch_inbound()] == []
    # The same name arriving again is archived next to the first copy, not over it.
    (t.inbox / "2_999.x12").write_bytes(b"second")
    (again,) = await t.fetch_inbound()
    await t.mark_processed(again)
    assert (archived / "2_999.x12.1").read_bytes() == b"second"


async def test_directory_fetch_on_a_missing_mailbox_is_empty(tmp_path: Path) -> None:
    assert await _transport(tmp_path).fetch_inbound() == []


def test_directory_transport_satisfies_the_port(tmp_path: Path) -> None:
    transport: Transport = _transport(tmp_path)
    assert transport.name == "directory"


# ---------------------------------------------------------------- retries


class _Flaky:
    """A fake transport failing with the given errors before succeeding."""

    name = "fake"

    def __init__(self, errors: Sequence[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def send(self, batch: OutgoingFile) -> SendReceipt:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return SendReceipt(batch.name, batch.batch_id, batch.content_hash, "fake", "id-1")

    async def fetch_inbound(self) -> list[InboundFile]:
        return []

    async def mark_processed(self, f: InboundFile) -> None:
        return None

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None:
        return None


class _Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


FILE = OutgoingFile("B.x12", b"ISA", "b")


async def test_transient_failures_then_success_follow_the_seeded_schedule() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=10.0)
    flaky = _Flaky([TransientTransportError("503", status_code=503)] * 3)
    sleeps = _Sleeps()
    outcome = await send_with_retry(flaky, FILE, policy, sleeps, rng=random.Random(7))
    assert outcome.ok
    assert outcome.receipt is not None
    assert outcome.receipt.remote_ref == "id-1"
    assert [a.error is None for a in outcome.attempts] == [False, False, False, True]
    expected_rng = random.Random(7)
    assert sleeps.delays == [policy.delay(n, expected_rng) for n in (1, 2, 3)]
    assert [a.delay_after for a in outcome.attempts[:3]] == sleeps.delays


async def test_permanent_failure_is_not_retried() -> None:
    flaky = _Flaky([PermanentTransportError("HTTP 400", status_code=400)])
    sleeps = _Sleeps()
    outcome = await send_with_retry(flaky, FILE, RetryPolicy(), sleeps)
    assert outcome.status == "failed"
    assert flaky.calls == 1
    assert sleeps.delays == []
    assert outcome.last_error == "HTTP 400"
    assert outcome.attempts[0].status_code == 400


async def test_retry_after_is_a_lower_bound_capped_by_max_delay() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=5.0)
    flaky = _Flaky(
        [
            TransientTransportError("429", status_code=429, retry_after=3.0),
            TransientTransportError("429", status_code=429, retry_after=3600.0),
        ]
    )
    sleeps = _Sleeps()
    outcome = await send_with_retry(flaky, FILE, policy, sleeps, rng=random.Random(1))
    assert outcome.ok
    assert sleeps.delays == [3.0, 5.0]


@given(
    base=st.floats(0.0, 10.0),
    extra=st.floats(0.0, 1000.0),
    seed=st.integers(0, 2**32),
    attempts=st.integers(1, 80),
)
def test_backoff_delays_stay_within_monotone_caps(
    base: float, extra: float, seed: int, attempts: int
) -> None:
    policy = RetryPolicy(max_attempts=attempts, base_delay=base, max_delay=base + extra)
    rng = random.Random(seed)
    caps = [policy.cap(n) for n in range(1, attempts + 1)]
    assert caps[0] == min(base, policy.max_delay)
    assert all(a <= b for a, b in itertools.pairwise(caps))
    assert all(c <= policy.max_delay for c in caps)
    for n, cap in enumerate(caps, start=1):
        assert 0.0 <= policy.delay(n, rng) <= cap
    no_jitter = RetryPolicy(attempts, base, base + extra, jitter=False)
    assert [no_jitter.delay(n, rng) for n in range(1, attempts + 1)] == caps


@given(max_attempts=st.integers(1, 8), seed=st.integers(0, 1000))
def test_gives_up_after_max_attempts(max_attempts: int, seed: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.5, max_delay=4.0)
    flaky = _Flaky([TransientTransportError("timeout")] * 100)
    sleeps = _Sleeps()
    outcome = asyncio.run(send_with_retry(flaky, FILE, policy, sleeps, rng=random.Random(seed)))
    assert outcome.status == "gave_up"
    assert flaky.calls == max_attempts
    assert len(outcome.attempts) == max_attempts
    assert all(a.transient for a in outcome.attempts)
    assert len(sleeps.delays) == max_attempts - 1
    assert all(0 <= d <= policy.cap(n) for n, d in enumerate(sleeps.delays, start=1))
    assert outcome.attempts[-1].delay_after is None


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=10, max_delay=1)
    with pytest.raises(ValueError, match="attempts count"):
        RetryPolicy().cap(0)
