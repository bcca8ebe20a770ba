"""Ready claims written straight into billing.claims (the claims worker's job is tested in
tests/integration/claims); a fake transport; shortcuts for the submission use cases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from sqlalchemy import insert, text

from services.billing.api.submissions import SUBMISSION_CONTROLLERS
from services.billing.submission import RunHooks, RunResult, SubmissionConfig, Transports
from services.billing.submission import run_submission as _run
from services.billing.tables import claim_lines, claims
from services.billing.transports import (
    InboundFile,
    OutgoingFile,
    RetryPolicy,
    SendReceipt,
    TransientTransportError,
)
from shared.uow import Database

PAYER = {
    "payer_id": "00000000-0000-4000-8000-000000000001",
    "name": "State Medicaid MTM",
    "x12_payer_id": "SKMD0",
    "receiver_id": "RCV123",
    "receiver_name": "Clearinghouse",
    "claim_filing_indicator": "MC",
    "timely_filing_days": 95,
    "appeal_window_days": 60,
    "transport": "directory",
    "trading_partner_id": "TP0001",
}
BILLING = {
    "npi": "1234567893",
    "entity_type": "2",
    "tin": "123456789",
    "name": "Acme Pharmacy",
    "taxonomy": "3336C0003X",
    "address": {"line1": "1 Main St", "line2": "", "city": "Town", "state": "NY",
                "zip": "123456789"},
}  # fmt: skip
RENDERING = {
    "npi": "1245319599",
    "entity_type": "1",
    "first_name": "Pat",
    "last_name": "Pharmacist",
    "taxonomy": "183500000X",
}


def subscriber(n: int) -> dict[str, Any]:
    return {
        "member_id": f"M{n:06d}",
        "group_number": "GRP1",
        "relationship": "18",
        "first_name": "Jane",
        "last_name": f"Doe{chr(65 + n % 26)}",
        "birth_date": "1950-03-04",
        "sex": "F",
        "address1": "2 Oak St",
        "city": "Town",
        "state": "NY",
        "zip": "12345",
    }


def mount(app: Litestar) -> Litestar:
    """The submission controllers under /v1, unless billing_router already mounts them."""
    if not any(r.path.startswith("/v1/batches") for r in app.routes):
        app.register(Router(path="/v1", route_handlers=SUBMISSION_CONTROLLERS))
    return app


def config(tmp: Path, **overrides: Any) -> SubmissionConfig:
    overrides.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0))
    return SubmissionConfig(mailbox_dir=tmp / "mailbox", **overrides)


async def add_ready_claims(
    db: Database,
    tenant: str,
    n: int,
    *,
    payer: dict[str, Any] | None = None,
    status: str = "ready",
    pcn_prefix: str | None = None,
    **changes: Any,
) -> list[str]:
    """``n`` ready claims (99605 + 99607 x2, $150.00) committed in one unit of work."""
    prefix = pcn_prefix or "S" + uuid.uuid4().hex[:7].upper()
    rows, lines = [], []
    ids = []
    for i in range(n):
        cid = str(uuid.uuid4())
        ids.append(cid)
        row = {
            "id": cid,
            "tenant_id": tenant,
            "session_id": str(uuid.uuid4()),
            "claim_version": 1,
            "frequency_code": "1",
            "patient_control_number": f"{prefix}-{i:06d}",
            "status": status,
            "status_reason": "scrubbed clean",
            "patient_ref": f"P-{i}",
            "service_type": "CMR",
            "date_of_service": date(2026, 11, 10),
            "place_of_service": "01",
            "billing_tin": "123456789",
            "total_charge_cents": 15000,
            "expected_cents": 12000,
            "timely_filing_deadline": date(2027, 2, 13),
            "billing_provider": BILLING,
            "rendering_provider": RENDERING,
            "subscriber": subscriber(i),
            "payer": payer or PAYER,
            "diagnoses": ["E119", "I10"],
            "coding": {},
            "eligibility": {},
        }
        row.update(changes)
        rows.append(row)
        for no, (code, units, cents) in enumerate((("99605", 1, 10000), ("99607", 2, 5000)), 1):
            lines.append(
                {
                    "claim_id": cid,
                    "line_no": no,
                    "procedure_code": code,
                    "modifiers": [],
                    "units": units,
                    "unit_charge_cents": cents // units,
                    "unit_expected_cents": cents // units,
                    "charge_cents": cents,
                    "expected_cents": cents,
                    "date_of_service": date(2026, 11, 10),
                    "diagnosis_pointers": [1, 2],
                }
            )
    async with db.transaction() as (conn, trans):
        await conn.execute(insert(claims), rows)
        await conn.execute(insert(claim_lines), lines)
        await trans.commit()
    return ids


async def statuses(db: Database, ids: Sequence[str]) -> dict[str, str]:
    async with db.transaction() as (conn, _t):
        rows = await conn.execute(
            text("SELECT id::text AS id, status FROM billing.claims WHERE id::text = ANY(:ids)"),
            {"ids": list(ids)},
        )
        return {r.id: r.status for r in rows}


async def fetch(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.transaction() as (conn, _t):
        return list(await conn.execute(text(sql), params))


async def run(
    db: Database,
    cfg: SubmissionConfig,
    tenant: str,
    *,
    transports: dict[str, Any] | None = None,
    hooks: RunHooks | None = None,
) -> RunResult:
    ts = Transports(cfg, transports)
    try:
        return await _run(db, ts, cfg, actor="test", tenant_id=tenant, hooks=hooks)
    finally:
        await ts.aclose()


@dataclass
class FlakyTransport:
    """Fails transiently ``failures`` times, then delivers (records every send)."""

    failures: int = 0
    name: str = "directory"
    sent: list[OutgoingFile] = field(default_factory=list)
    calls: int = 0

    async def send(self, batch: OutgoingFile) -> SendReceipt:
        self.calls += 1
        await asyncio.sleep(0)
        if self.calls <= self.failures:
            raise TransientTransportError("connection refused", status_code=503)
        self.sent.append(batch)
        return SendReceipt(batch.name, batch.batch_id, batch.content_hash, self.name, batch.name)

    async def fetch_inbound(self) -> list[InboundFile]:
        return []

    async def mark_processed(self, f: InboundFile) -> None:
        return None

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None:
        return None
