"""The audit trail: append-only, hash-chained, verifiable, tamper-evident."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared import audit
from tests.fixtures.sessions import session_payload
from tests.integration.conftest import Keys


async def _three_events(conn: Any, tenant: str) -> None:
    await audit.append(
        conn,
        tenant_id=tenant,
        entity_type="claim",
        entity_id="C1",
        action="claim.created",
        actor="u1",
        after={"status": "draft"},
        new_entity=True,
    )
    await audit.append(
        conn,
        tenant_id=tenant,
        entity_type="claim",
        entity_id="C1",
        action="claim.ready",
        actor="u1",
        before={"status": "draft"},
        after={"status": "ready"},
        reason="scrub passed",
    )
    await audit.append(
        conn,
        tenant_id=tenant,
        entity_type="claim",
        entity_id="C1",
        action="claim.submitted",
        actor="worker",
        before={"status": "ready"},
        after={"status": "submitted", "amount": "75.00"},
    )


async def test_chain_verifies_and_links(db: Any, tenant: str) -> None:
    async with db.transaction() as (conn, _t):
        await _three_events(conn, tenant)
        events = await audit.history(conn, tenant_id=tenant, entity_type="claim", entity_id="C1")
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == audit.GENESIS
    assert events[1].prev_hash == events[0].hash
    assert audit.verify_chain(events).valid


async def test_update_and_delete_are_rejected_by_the_database(db: Any, tenant: str) -> None:
    async with db.transaction() as (conn, trans):
        await _three_events(conn, tenant)
        await trans.commit()
    for sql in (
        "UPDATE audit.events SET reason = 'x' WHERE tenant_id = :t",
        "DELETE FROM audit.events WHERE tenant_id = :t",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction() as (conn, _t):
                await conn.execute(text(sql), {"t": tenant})


async def test_tampering_is_detected_and_named(db: Any, tenant: str) -> None:
    async with db.transaction() as (conn, trans):
        await _three_events(conn, tenant)
        # An attacker with superuser rights disables the trigger and edits event 2.
        await conn.execute(text("ALTER TABLE audit.events DISABLE TRIGGER events_append_only"))
        await conn.execute(
            text(
                'UPDATE audit.events SET after = \'{"status": "paid"}\' WHERE tenant_id = :t AND seq = 2'
            ),
            {"t": tenant},
        )
        await conn.execute(text("ALTER TABLE audit.events ENABLE TRIGGER events_append_only"))
        events = await audit.history(conn, tenant_id=tenant, entity_type="claim", entity_id="C1")
        await trans.commit()
    check = audit.verify_chain(events)
    assert not check.valid
    assert check.broken_at_seq == 2
    assert "altered" in (check.problem or "")


async def test_deleted_event_breaks_the_chain(db: Any, tenant: str) -> None:
    async with db.transaction() as (conn, _t):
        await _three_events(conn, tenant)
        await conn.execute(text("ALTER TABLE audit.events DISABLE TRIGGER events_append_only"))
        await conn.execute(
            text("DELETE FROM audit.events WHERE tenant_id = :t AND seq = 2"), {"t": tenant}
        )
        await conn.execute(text("ALTER TABLE audit.events ENABLE TRIGGER events_append_only"))
        events = await audit.history(conn, tenant_id=tenant, entity_type="claim", entity_id="C1")
    check = audit.verify_chain(events)
    assert not check.valid
    assert check.broken_at_seq == 3


async def test_audit_endpoint_reports_chain_and_tamper(client: Any, keys: Keys, db: Any) -> None:
    created = await client.post(
        "/v1/sessions", json=session_payload("S-A1"), headers=keys.headers("intake")
    )
    sid = created.json()["id"]
    ok = await client.get(f"/v1/audit/session/{sid}", headers=keys.headers("auditor"))
    assert ok.status_code == 200
    body = ok.json()
    assert body["chain_valid"] is True
    assert body["events"][0]["action"] == "session.received"
    assert body["events"][0]["request_id"] == created.headers["x-request-id"]
    async with db.transaction() as (conn, trans):
        await conn.execute(text("ALTER TABLE audit.events DISABLE TRIGGER events_append_only"))
        await conn.execute(
            text("UPDATE audit.events SET actor = 'someone-else' WHERE entity_id = :e"), {"e": sid}
        )
        await conn.execute(text("ALTER TABLE audit.events ENABLE TRIGGER events_append_only"))
        await trans.commit()
    bad = (await client.get(f"/v1/audit/session/{sid}", headers=keys.headers("auditor"))).json()
    assert bad["chain_valid"] is False
    assert bad["broken_at_seq"] == 1
    other = await client.get(
        f"/v1/audit/session/{sid}", headers=keys.headers("auditor", other=True)
    )
    assert other.status_code == 404
