"""Roster imports: CSV (column map, bad rows, idempotency), 834 add/change/term/full file, 271."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.x271 import (
    Benefit,
    DateRange,
    EligibilityResponse,
    SubscriberEligibility,
    build_271,
)
from shared.x12.x834 import Coverage, Enrollment834, MemberRecord, build_834
from tests.integration.conftest import Keys
from tests.integration.coverage.helpers import MANAGER, check, make_contract, make_payer

HEADER = "Subscriber ID,last_name,first_name,DOB,sex,effective_from,effective_to,rate_tier,opt_out_date,part_d_eligible\n"
PARTIES = Parties("ZZ", "PAYER", "ZZ", "PHARMACY")
CONTROL = ControlNumbers(1, 1, 1)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


async def _setup(client: Any, keys: Keys) -> tuple[str, str]:
    payer = await make_payer(
        client, keys, roster_columns={"member_id": "Subscriber ID", "birth_date": "DOB"}
    )
    contract = await make_contract(client, keys, payer["id"])
    return payer["id"], contract["id"]


async def _upload(
    client: Any, keys: Keys, fmt: str, payer: str, contract: str, content: str | bytes
) -> Any:
    return await client.post(
        f"/v1/rosters/{fmt}",
        params={"payer_id": payer, "contract_id": contract},
        content=content.encode() if isinstance(content, str) else content,
        headers={**keys.headers(MANAGER), "content-type": "application/octet-stream"},
    )


async def test_csv_import_then_replay_changes_nothing(client: Any, keys: Keys) -> None:
    payer, contract = await _setup(client, keys)
    csv = HEADER + (
        "M1,Doe,Jane,1950-01-02,F,2025-01-01,,standard,,N\n"
        "M2,Roe,Rich,01/31/1948,M,2025-01-01,2025-03-31,,,N\n"
        "M3,Poe,Ed,1940-05-05,M,2025-01-01,,,2025-04-01,Y\n"
    )
    first = await _upload(client, keys, "csv", payer, contract, csv)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["members"], body["patients_created"], body["span_versions_added"]) == (3, 3, 3)
    again = await _upload(client, keys, "csv", payer, contract, csv)
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["import_id"] == body["import_id"]
    m2 = await check(client, keys, patient_ref="M2", date_of_service="2025-04-01")
    assert m2["reasons"][0]["code"] == "NO_COVERAGE_ON_DOS"
    m3 = await check(client, keys, patient_ref="M3", date_of_service="2025-04-02")
    assert {r["code"] for r in m3["reasons"]} == {"OPTED_OUT", "EXCLUDED_POPULATION"}
    m1 = await check(client, keys, patient_ref="M1", date_of_service="2025-04-02")
    assert m1["eligible"] is True
    assert m1["coverage"]["rate_tier"] == "standard"
    # A changed file (retro-termination of M1) adds one version and leaves the rest alone.
    changed = csv.replace(
        "M1,Doe,Jane,1950-01-02,F,2025-01-01,,", "M1,Doe,Jane,1950-01-02,F,2025-01-01,2025-02-28,"
    )
    third = await _upload(client, keys, "csv", payer, contract, changed)
    assert third.status_code == 201
    assert (third.json()["span_versions_added"], third.json()["unchanged"]) == (1, 2)
    assert not (await check(client, keys, patient_ref="M1", date_of_service="2025-04-02"))[
        "eligible"
    ]
    known = await check(
        client,
        keys,
        patient_ref="M1",
        date_of_service="2025-04-02",
        as_known_at=body["imported_at"],
    )
    assert known["eligible"] is True


async def test_csv_bad_rows_are_all_reported_and_nothing_applied(client: Any, keys: Keys) -> None:
    payer, contract = await _setup(client, keys)
    csv = HEADER + (
        "M1,Doe,Jane,1950-01-02,F,2025-01-01,,,,N\n"
        "M2,Roe,Rich,not-a-date,M,2025-01-01,,,,N\n"
        "M3,Poe,Ed,1940-05-05,X,2025-01-01,2024-01-01,,,N\n"
    )
    resp = await _upload(client, keys, "csv", payer, contract, csv)
    assert resp.status_code == 422
    fields = [e["field"] for e in resp.json()["errors"]]
    assert sorted(fields) == ["rows[3].birth_date", "rows[4].effective_to", "rows[4].sex"]
    listed = await client.get("/v1/patients", headers=keys.headers(MANAGER))
    assert listed.json()["items"] == []
    missing = await _upload(client, keys, "csv", payer, contract, "member_id,last_name\nM1,Doe\n")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"].startswith("rows[1].")


def _member(
    mid: str, ins03: str, begin: date | None = None, end: date | None = None, **kw: Any
) -> MemberRecord:
    cov = Coverage(maintenance_type=ins03, insurance_line="HLT", begin=begin, end=end)
    return MemberRecord(
        is_subscriber=True,
        relationship="18",
        maintenance_type=ins03,
        subscriber_id=mid,
        member_id=mid,
        last_name="Doe",
        first_name="J",
        birth_date=date(1950, 1, 1),
        sex="F",
        coverages=[cov],
        **kw,
    )


def _834(action: str, members: list[MemberRecord], ref: str, effective: date | None = None) -> str:
    enrollment = Enrollment834(
        action_code=action,
        reference=ref,
        created=date(2025, 6, 1),
        sponsor_name="State",
        payer_name="Payer",
        file_effective_date=effective,
        members=members,
    )
    return build_834([enrollment], parties=PARTIES, control=CONTROL, created_at=NOW)


async def test_834_add_change_term_and_full_file(client: Any, keys: Keys) -> None:
    payer, contract = await _setup(client, keys)
    adds = _834(
        "2",
        [
            _member("A1", "021", date(2025, 1, 1)),
            _member("A2", "021", date(2025, 1, 1)),
            _member("A3", "021", date(2025, 2, 1)),
        ],
        "F1",
    )
    resp = await _upload(client, keys, "834", payer, contract, adds)
    assert resp.status_code == 201, resp.text
    assert resp.json()["span_versions_added"] == 3
    term = _834("2", [_member("A1", "024", None, date(2025, 3, 31))], "F2")
    resp = await _upload(client, keys, "834", payer, contract, term)
    assert resp.json()["terminated"] == 1, resp.text
    assert not (await check(client, keys, patient_ref="A1", date_of_service="2025-04-01"))[
        "eligible"
    ]
    assert (await check(client, keys, patient_ref="A1", date_of_service="2025-03-31"))["eligible"]
    change = _834("2", [_member("A2", "001", date(2025, 1, 1), date(2025, 12, 31))], "F3")
    resp = await _upload(client, keys, "834", payer, contract, change)
    assert resp.json()["span_versions_added"] == 1
    reinstate = _834("2", [_member("A1", "025", date(2025, 1, 1))], "F4")
    resp = await _upload(client, keys, "834", payer, contract, reinstate)
    assert resp.json()["span_versions_added"] == 1
    assert (await check(client, keys, patient_ref="A1", date_of_service="2025-05-01"))["eligible"]
    # Full file listing A1 and A2 only: A3's open coverage ends the day before 2025-07-01.
    full = _834(
        "RX",
        [
            _member("A1", "030", date(2025, 1, 1)),
            _member("A2", "030", date(2025, 1, 1), date(2025, 12, 31)),
        ],
        "F5",
        effective=date(2025, 7, 1),
    )
    resp = await _upload(client, keys, "834", payer, contract, full)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["terminated"], resp.json()["unchanged"]) == (1, 2)
    assert not (await check(client, keys, patient_ref="A3", date_of_service="2025-07-01"))[
        "eligible"
    ]
    assert (await check(client, keys, patient_ref="A3", date_of_service="2025-06-30"))["eligible"]
    bad = _834("2", [_member("B1", "021", None)], "F6")
    resp = await _upload(client, keys, "834", payer, contract, bad)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "rows[1].DTP*348"
    garbage = await _upload(client, keys, "834", payer, contract, "ISA*nonsense~")
    assert garbage.status_code == 422


async def test_271_active_and_inactive(client: Any, keys: Keys) -> None:
    payer, contract = await _setup(client, keys)

    def response(code: str, begin: date, end: date | None, ref: str) -> str:
        member = SubscriberEligibility(
            member_id="E1",
            last_name="Doe",
            first_name="J",
            birth_date=date(1960, 1, 1),
            sex="M",
            benefits=[
                Benefit(
                    code=code,
                    service_types=("30",),
                    begin=begin,
                    end=end,
                    dates={"291": DateRange(begin, end)},
                )
            ],
        )
        resp = EligibilityResponse(
            "Payer",
            "PAYER",
            "Pharmacy",
            "1234567893",
            reference=ref,
            created=date(2025, 6, 1),
            subscribers=[member],
        )
        return build_271([resp], parties=PARTIES, control=CONTROL, created_at=NOW)

    active = response("1", date(2025, 1, 1), date(2025, 12, 31), "R1")
    resp = await _upload(client, keys, "271", payer, contract, active)
    assert resp.status_code == 201, resp.text
    assert resp.json()["patients_created"] == 1
    assert (await check(client, keys, patient_ref="E1", date_of_service="2025-08-01"))["eligible"]
    inactive = response("6", date(2025, 8, 1), None, "R2")
    resp = await _upload(client, keys, "271", payer, contract, inactive)
    assert resp.status_code == 201, resp.text
    assert resp.json()["terminated"] == 1
    late = await check(client, keys, patient_ref="E1", date_of_service="2025-08-01")
    assert late["reasons"][0]["code"] == "NO_COVERAGE_ON_DOS"
    assert (await check(client, keys, patient_ref="E1", date_of_service="2025-07-31"))["eligible"]


async def test_contract_of_other_payer_and_unknown_format(client: Any, keys: Keys) -> None:
    payer, contract = await _setup(client, keys)
    other = await make_payer(client, keys, x12_payer_id="OTHER")
    resp = await _upload(client, keys, "csv", other["id"], contract, HEADER)
    assert resp.status_code == 422
    resp = await _upload(client, keys, "xls", payer, contract, HEADER)
    assert resp.status_code == 400
    resp = await client.post(
        "/v1/rosters/csv",
        params={"payer_id": payer, "contract_id": contract},
        content=HEADER.encode(),
        headers={**keys.headers(MANAGER, other=True), "content-type": "text/csv"},
    )
    assert resp.status_code == 404
