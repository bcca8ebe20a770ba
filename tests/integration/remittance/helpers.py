"""Remittance test builders: submitted claims written straight into billing.claims (the
claims and submission agents test their own paths), their 837P, and the payer simulator's
835 answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from devtools.payer_simulator import GeneratedFile, PayerSimulator, SimulatorRules
from services.billing.submission_build import claim_837
from services.billing.tables import claim_lines, claims
from shared import audit
from shared.uow import Database
from shared.x12.envelope import ControlNumbers
from shared.x12.x837p import Receiver, Submitter, build_837p
from tests.integration.submission.helpers import PAYER, add_ready_claims

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SUBMITTER = Submitter("ACME PHARMACY BILLING", "SUBMIT001", "JANE DOE", "5555551234")
RECEIVER = Receiver("ACME HEALTH PLAN", "RECEIVE01")
QUIET = dict(reject_999_rate=0.0, reject_277_rate=0.0, a1_rate=0.0, reversal_rate=0.0)
# The payer snapshot as the claims worker stores it, with the appeal window.
ELIGIBILITY = {"eligible": True, "checked_on": "2026-11-10", "payer": PAYER}


async def submitted_claims(db: Database, tenant: str, n: int, **changes: Any) -> list[str]:
    """``n`` claims ($150.00: 99605 $100 + 99607 x2 $50) already sent to the payer."""
    changes.setdefault("eligibility", ELIGIBILITY)
    ids = await add_ready_claims(db, tenant, n, status="submitted", **changes)
    async with db.transaction() as (conn, trans):
        for cid in ids:
            await audit.append(
                conn,
                tenant_id=tenant,
                entity_type="claim",
                entity_id=cid,
                action="claim.submit",
                actor="worker",
                reason="sent in a test batch",
                before={"status": "ready"},
                after={"status": "submitted"},
            )
        await trans.commit()
    return ids


async def file_837(db: Database, ids: Sequence[str], isa13: int = 1) -> str:
    async with db.transaction() as (conn, _t):
        rows = list(await conn.execute(select(claims).where(claims.c.id.in_(list(ids)))))
        built = []
        for r in rows:
            lines = list(
                await conn.execute(
                    select(claim_lines)
                    .where(claim_lines.c.claim_id == r.id)
                    .order_by(claim_lines.c.line_no)
                )
            )
            built.append(claim_837(r._mapping, [ln._mapping for ln in lines]))
    return build_837p(
        SUBMITTER,
        RECEIVER,
        built,
        ControlNumbers(isa13, isa13, 1),
        datetime(2026, 11, 20, 12),
        batch_reference=f"BATCH{isa13:04d}",
    )


def simulator(**rules: Any) -> PayerSimulator:
    merged = {**QUIET, **rules}
    return PayerSimulator(SimulatorRules(**merged), now=lambda: NOW)


def remits(files: list[GeneratedFile]) -> list[GeneratedFile]:
    return [f for f in files if f.kind == "835"]


async def scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.transaction() as (conn, _t):
        return (await conn.execute(text(sql), params)).scalar()


async def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.transaction() as (conn, _t):
        return list(await conn.execute(text(sql), params))
