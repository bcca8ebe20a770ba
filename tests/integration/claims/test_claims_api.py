"""Claims through the API: list filters and keyset pages, detail, verifiable history, and a
biller's hold, release and corrections under optimistic locking."""

from __future__ import annotations

from typing import Any

from tests.integration.claims.helpers import (
    claim_of_session,
    clean_session,
    covered_patient,
    post_session,
    run_worker,
)
from tests.integration.conftest import Keys

BILLER = "biller"


async def _three_claims(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    cov = await covered_patient(client, keys, "P-1")
    ready = await post_session(client, keys, clean_session("L-1", date_of_service="2026-05-01"))
    held = await post_session(
        client,
        keys,
        clean_session("L-2", date_of_service="2026-06-01", consent=False, service_type="TMR"),
    )
    lost = await post_session(
        client, keys, clean_session("L-3", date_of_service="2026-07-01", patient_ref="P-9")
    )
    await run_worker(worker_ctx)
    return (
        cov,
        await claim_of_session(client, keys, ready),
        await claim_of_session(client, keys, held),
        await claim_of_session(client, keys, lost),
    )


async def _list(client: Any, keys: Keys, **params: Any) -> dict[str, Any]:
    resp = await client.get("/v1/claims", params=params, headers=keys.headers(BILLER))
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


def _ids(page: dict[str, Any]) -> list[str]:
    return [c["id"] for c in page["items"]]


async def test_list_filters_and_keyset_pages(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    cov, ready, held, lost = await _three_claims(client, keys, worker_ctx)
    everything = await _list(client, keys)
    assert set(_ids(everything)) == {ready["id"], held["id"], lost["id"]}
    assert everything["next_cursor"] is None

    assert _ids(await _list(client, keys, status="ready")) == [ready["id"]]
    both = await _list(client, keys, status=["on_hold", "not_billable"])
    assert set(_ids(both)) == {held["id"], lost["id"]}
    assert set(_ids(await _list(client, keys, payer=cov["payer"]["id"]))) == {
        ready["id"],
        held["id"],
    }
    assert _ids(await _list(client, keys, patient="P-9")) == [lost["id"]]
    assert _ids(await _list(client, keys, dos_from="2026-05-15", dos_to="2026-06-15")) == [
        held["id"]
    ]
    assert (
        len(_ids(await _list(client, keys, created_from=ready["created_at"]))) == 3
    )  # one batch, one timestamp
    assert _ids(await _list(client, keys, created_to=ready["created_at"])) == []

    seen: list[str] = []
    page = await _list(client, keys, limit=2)
    seen += _ids(page)
    assert len(seen) == 2
    assert page["next_cursor"]
    page = await _list(client, keys, limit=2, after=page["next_cursor"])
    seen += _ids(page)
    assert page["next_cursor"] is None
    assert sorted(seen) == sorted(_ids(everything))
    summary = page["items"][0]
    assert set(summary) >= {"patient_control_number", "status", "total_charge", "version"}

    other = await client.get("/v1/claims", headers=keys.headers(BILLER, other=True))
    assert other.json()["items"] == []


async def test_bad_list_queries_are_4xx_with_field_paths(client: Any, keys: Keys) -> None:
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"after": "garbage!"}, "after"),
        ({"payer": "not-a-uuid"}, "payer"),
        ({"created_from": "2026-01-01T00:00:00"}, "created_from"),
    ):
        resp = await client.get("/v1/claims", params=params, headers=keys.headers(BILLER))
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["errors"][0]["field"] == field
    for params in ({"limit": "0"}, {"dos_from": "yesterday"}):
        resp = await client.get("/v1/claims", params=params, headers=keys.headers(BILLER))
        assert 400 <= resp.status_code < 500, params


async def test_other_tenants_and_unknown_claims_are_404(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    _, ready, _, _ = await _three_claims(client, keys, worker_ctx)
    for path in (f"/v1/claims/{ready['id']}", f"/v1/claims/{ready['id']}/history"):
        resp = await client.get(path, headers=keys.headers(BILLER, other=True))
        assert resp.status_code == 404
        assert resp.json()["code"] == "claim_not_found"
    hold = await client.post(
        f"/v1/claims/{ready['id']}/hold",
        json={"reason": "x"},
        headers=keys.headers(BILLER, other=True),
    )
    assert hold.status_code == 404
    assert (await client.get("/v1/claims/nope", headers=keys.headers(BILLER))).status_code == 404


async def test_hold_release_and_history_chain(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    _, ready, _, _ = await _three_claims(client, keys, worker_ctx)
    url = f"/v1/claims/{ready['id']}"
    held = await client.post(
        f"{url}/hold",
        json={"reason": "checking the care plan", "version": ready["version"]},
        headers=keys.headers(BILLER),
    )
    assert held.status_code == 200, held.text
    body = held.json()
    assert body["status"] == "on_hold"
    assert body["version"] == ready["version"] + 1
    assert {r["code"] for r in body["hold_reasons"]} == {"MANUAL_HOLD"}

    stale = await client.post(
        f"{url}/release",
        json={"reason": "ok", "version": ready["version"]},
        headers=keys.headers(BILLER),
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version"

    again = await client.post(f"{url}/hold", json={"reason": "twice"}, headers=keys.headers(BILLER))
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"

    released = await client.post(
        f"{url}/release",
        json={"reason": "care plan found", "version": body["version"]},
        headers=keys.headers("manager"),
    )
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "ready"
    assert released.json()["hold_reasons"] == []

    history = await client.get(f"{url}/history", headers=keys.headers("auditor"))
    assert history.status_code == 200
    trail = history.json()
    assert trail["chain_valid"] is True
    assert [e["action"] for e in trail["events"]] == [
        "claim.created",
        "claim.scrub_passed",
        "claim.hold",
        "claim.released",
    ]
    hold_event = trail["events"][2]
    assert hold_event["actor"].startswith("apikey:")
    assert hold_event["reason"] == "checking the care plan"
    assert hold_event["before"] == {"status": "ready"}
    assert hold_event["after"]["status"] == "on_hold"
    assert trail["events"][0]["actor"] == "worker"


async def test_biller_corrects_a_held_claim_and_it_moves_to_ready(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    await covered_patient(client, keys)
    body = clean_session("C-1")
    body["pharmacy"] = {
        **body["pharmacy"],
        "address": {**body["pharmacy"]["address"], "zip": "12345"},
    }
    claim = await claim_of_session(client, keys, await _posted(client, keys, worker_ctx, body))
    assert {r["code"] for r in claim["hold_reasons"]} == {"billing_zip_invalid"}
    url = f"/v1/claims/{claim['id']}"

    # Too many add-on units for the contract's cap of 3: re-scrubbed, still held.
    over = await client.patch(
        url,
        json={"version": claim["version"], "lines": [{"line_no": 2, "units": 5}]},
        headers=keys.headers(BILLER),
    )
    assert over.status_code == 200, over.text
    over_body = over.json()
    assert over_body["status"] == "on_hold"
    assert {r["code"] for r in over_body["hold_reasons"]} == {
        "billing_zip_invalid",
        "addon_units_over_cap",
    }
    assert over_body["lines"][1]["charge"] == "125.00"
    assert over_body["total_charge"] == "200.00"

    stale = await client.patch(
        url, json={"version": claim["version"], "member_id": "X"}, headers=keys.headers(BILLER)
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version"

    bad = await client.patch(
        url,
        json={"version": over_body["version"], "lines": [{"line_no": 9, "units": 1}]},
        headers=keys.headers(BILLER),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "lines[0].line_no"
    malformed = await client.patch(
        url,
        json={"version": over_body["version"], "diagnoses": ["nope"]},
        headers=keys.headers(BILLER),
    )
    assert malformed.status_code in (400, 422)

    fixed = await client.patch(
        url,
        json={
            "version": over_body["version"],
            "reason": "ZIP+4 from the NPPES record; units per documentation",
            "lines": [{"line_no": 2, "units": 2}],
            "billing_provider": {
                "address": {
                    "line1": "1 Main St",
                    "city": "Town",
                    "state": "NY",
                    "zip": "12345-6789",
                }
            },
            "diagnoses": ["I10", "E11.9", "E78.5"],
        },
        headers=keys.headers(BILLER),
    )
    assert fixed.status_code == 200, fixed.text
    done = fixed.json()
    assert done["status"] == "ready"
    assert done["hold_reasons"] == []
    assert done["diagnoses"] == ["I10", "E119", "E785"]
    assert done["lines"][0]["diagnosis_pointers"] == [1, 2, 3]
    assert done["total_charge"] == "125.00"

    again = await client.patch(
        url, json={"version": done["version"], "member_id": "X"}, headers=keys.headers(BILLER)
    )
    assert again.status_code == 409  # only a held claim is corrected

    trail = (await client.get(f"{url}/history", headers=keys.headers(BILLER))).json()
    assert trail["chain_valid"] is True
    assert [e["action"] for e in trail["events"]] == [
        "claim.created",
        "claim.hold",
        "claim.corrected",
        "claim.corrected",
        "claim.scrub_passed",
    ]
    assert trail["events"][3]["after"]["lines[2].units"] == 2


async def test_release_refuses_a_claim_that_still_fails_the_scrubber(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    await covered_patient(client, keys)
    body = clean_session("C-2")
    body["pharmacy"] = {
        **body["pharmacy"],
        "address": {**body["pharmacy"]["address"], "zip": "12345"},
    }
    claim = await claim_of_session(client, keys, await _posted(client, keys, worker_ctx, body))
    resp = await client.post(
        f"/v1/claims/{claim['id']}/release", json={"reason": "try"}, headers=keys.headers(BILLER)
    )
    assert resp.status_code == 422
    assert resp.json()["code"] == "scrub_failed"
    assert resp.json()["errors"][0]["field"] == "billing_address.postal_code"
    assert (await client.get(f"/v1/claims/{claim['id']}", headers=keys.headers(BILLER))).json()[
        "status"
    ] == "on_hold"


async def _posted(client: Any, keys: Keys, worker_ctx: dict[str, Any], body: dict[str, Any]) -> str:
    sid = await post_session(client, keys, body)
    await run_worker(worker_ctx)
    return sid
