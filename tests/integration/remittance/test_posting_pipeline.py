"""The pipelined posting (chunk k+1 built while chunk k is copied): a failure on either side
in the middle of a file applies nothing, leaves the connection usable, and the same file then
posts whole."""

from __future__ import annotations

import gc
import uuid
from typing import Any

import pytest

from services.billing import remittance_decisions, remittance_items, remittance_post
from shared.uow import Database
from tests.integration.remittance.helpers import (
    file_837,
    remits,
    rows,
    scalar,
    simulator,
    submitted_claims,
)
from tests.integration.remittance.test_posting import ingest

N = 12


def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """3-claim chunks built one claim per slice, patched in every module that looks them up."""
    for module in (remittance_post, remittance_items):
        monkeypatch.setattr(module, "CHUNK", 3)
    for module in (remittance_post, remittance_decisions, remittance_items):
        monkeypatch.setattr(module, "SLICE", 1)


async def _file(db: Database, tenant: str) -> str:
    ids = await submitted_claims(db, tenant, N)
    sim = simulator(seed=4, deny_rate=0.3, patient_responsibility_rate=0.3)
    out = remits(sim.adjudicate_file("B1.x12", await file_837(db, ids)))
    assert len(out) == 1
    return out[0].text


async def _nothing_applied(db: Database, tenant: str) -> None:
    assert (
        await scalar(
            db, "SELECT count(*) FROM billing.remittance_files WHERE tenant_id = :t", t=tenant
        )
        == 0
    )
    assert (
        await scalar(
            db, "SELECT count(*) FROM billing.claim_payments WHERE tenant_id = :t", t=tenant
        )
        == 0
    )
    statuses = await rows(
        db, "SELECT DISTINCT status FROM billing.claims WHERE tenant_id = :t", t=tenant
    )
    assert [r.status for r in statuses] == ["submitted"]
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM audit.events WHERE tenant_id = :t AND action LIKE 'claim.remit%'",
            t=tenant,
        )
        == 0
    )


async def _posts_whole(db: Database, tenant: str, text: str) -> None:
    result = await ingest(db, tenant, text)
    assert (result.status, result.matched) == ("posted", N)
    assert (
        await scalar(
            db, "SELECT count(*) FROM billing.claim_payments WHERE tenant_id = :t", t=tenant
        )
        == N
    )


async def test_failed_row_building_while_a_chunk_is_copied_applies_nothing(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = await _file(db, tenant)
    _small_chunks(monkeypatch)
    real = remittance_post._Posting.claim
    calls = 0

    def claim(self: Any, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 8:  # building chunk 3 while chunk 2 is being copied
            raise RuntimeError("row building failed")
        real(self, *args)

    monkeypatch.setattr(remittance_post._Posting, "claim", claim)
    with pytest.raises(RuntimeError, match="row building failed"):
        await ingest(db, tenant, text)
    assert gc.isenabled()  # the collector paused for the ingestion is back
    await _nothing_applied(db, tenant)
    monkeypatch.setattr(remittance_post._Posting, "claim", real)
    await _posts_whole(db, tenant, text)


async def test_a_failed_copy_stops_the_building_and_applies_nothing(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = await _file(db, tenant)
    _small_chunks(monkeypatch)
    real_write = remittance_post._write_rows
    real_claim = remittance_post._Posting.claim
    writes = built = 0

    async def write_rows(drv: Any, chunk: Any) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:  # a line pointing at no payment: the COPY's foreign key check fails
            chunk.lines[0] = (str(uuid.uuid4()), *chunk.lines[0][1:])
        await real_write(drv, chunk)

    def claim(self: Any, *args: Any) -> None:
        nonlocal built
        built += 1
        real_claim(self, *args)

    monkeypatch.setattr(remittance_post, "_write_rows", write_rows)
    monkeypatch.setattr(remittance_post._Posting, "claim", claim)
    with pytest.raises(Exception, match="foreign key"):
        await ingest(db, tenant, text)
    assert built < N  # the failed COPY stopped the building of the next chunks
    await _nothing_applied(db, tenant)
    monkeypatch.setattr(remittance_post, "_write_rows", real_write)
    await _posts_whole(db, tenant, text)
