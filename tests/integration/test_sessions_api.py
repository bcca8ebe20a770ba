"""Session intake through the real app, PostgreSQL and the worker's job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.billing.tasks import price_session
from shared.clock import utc_today
from tests.fixtures.sessions import session_payload
from tests.integration.conftest import Keys


async def test_create_then_replay_returns_first_result(client: Any, keys: Keys) -> None:
    body = session_payload("S-100")
    first = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert first.status_code == 201, first.text
    again = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


async def test_same_external_id_with_different_body_is_409(client: Any, keys: Keys) -> None:
    await client.post("/v1/sessions", json=session_payload("S-101"), headers=keys.headers("intake"))
    changed = session_payload("S-101", documented_minutes=50)
    resp = await client.post("/v1/sessions", json=changed, headers=keys.headers("intake"))
    assert resp.status_code == 409
    problem = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "idempotency_conflict"
    assert problem["errors"][0]["field"] == "external_id"


async def test_other_tenant_may_reuse_external_id(client: Any, keys: Keys) -> None:
    body = session_payload("S-102")
    a = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    b = await client.post("/v1/sessions", json=body, headers=keys.headers("intake", other=True))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_schema_violations_name_field_paths(client: Any, keys: Keys) -> None:
    body = session_payload("S-103")
    body["pharmacy"]["npi"] = "12345"
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 422
    problem = resp.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"][0]["field"] == "pharmacy.npi"


async def test_business_rule_violations_are_422_with_all_fields(client: Any, keys: Keys) -> None:
    future = utc_today() + timedelta(days=3)
    body = session_payload("S-104", date_of_service=future)
    del body["documented_minutes"]
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.json()["errors"]}
    assert fields == {"date_of_service", "documented_minutes"}


async def test_times_must_agree_with_minutes(client: Any, keys: Keys) -> None:
    body = session_payload(
        "S-105", start_time="10:00:00", end_time="10:30:00", documented_minutes=45
    )
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["code"] == "minutes_mismatch"
    ok = session_payload("S-106", start_time="10:00:00", end_time="10:30:00")
    del ok["documented_minutes"]
    created = await client.post("/v1/sessions", json=ok, headers=keys.headers("intake"))
    assert created.status_code == 201
    read = await client.get(created.headers["location"], headers=keys.headers("biller"))
    assert read.json()["minutes"] == 30


async def test_malformed_json_is_400(client: Any, keys: Keys) -> None:
    resp = await client.post(
        "/v1/sessions",
        content=b'{"external_id": ',
        headers={**keys.headers("intake"), "content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "malformed_body"


async def test_unknown_fields_are_rejected(client: Any, keys: Keys) -> None:
    body = session_payload("S-107", is_new_patient=True)
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 422


async def test_read_shows_state_and_history_and_worker_moves_it(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    created = await client.post(
        "/v1/sessions", json=session_payload("S-108"), headers=keys.headers("intake")
    )
    sid = created.json()["id"]
    read = (await client.get(f"/v1/sessions/{sid}", headers=keys.headers("biller"))).json()
    assert read["state"] == "received"
    assert [h["action"] for h in read["history"]] == ["session.received"]
    assert read["session"]["diagnoses"] == ["E11.9", "I10"]

    processed = await price_session(worker_ctx, sid, keys_tenant(read))
    assert processed >= 1
    again = await price_session(worker_ctx, sid, keys_tenant(read))
    assert again == 0  # idempotent: a second run finds nothing to do

    read = (await client.get(f"/v1/sessions/{sid}", headers=keys.headers("biller"))).json()
    # No coverage is on file for this patient: the worker's claim says not billable.
    assert read["state"] == "not_billable"
    assert [h["action"] for h in read["history"]] == [
        "session.received",
        "session.not_billable",
    ]


def keys_tenant(_read: dict[str, Any]) -> str:
    return "unused"  # the job reads the tenant from the outbox row, not from its argument


async def test_other_tenants_session_is_404(client: Any, keys: Keys) -> None:
    created = await client.post(
        "/v1/sessions", json=session_payload("S-109"), headers=keys.headers("intake")
    )
    sid = created.json()["id"]
    resp = await client.get(f"/v1/sessions/{sid}", headers=keys.headers("biller", other=True))
    assert resp.status_code == 404
    assert resp.json()["code"] == "session_not_found"
    garbage = await client.get("/v1/sessions/not-a-uuid", headers=keys.headers("biller"))
    assert garbage.status_code == 404


async def test_every_response_has_a_request_id(client: Any, keys: Keys) -> None:
    for resp in (
        await client.get("/health"),
        await client.get("/v1/sessions/x"),
        await client.get("/v1/nope", headers=keys.headers("admin")),
    ):
        assert len(resp.headers["x-request-id"]) >= 8
    echoed = await client.get("/health", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
