"""PMPM claims against real PostgreSQL: closing the month of a contract that bills by claim
(payment_mode monthly_claim) creates one claim per billable member-month of the closed run,
with the run's codes, units and amounts, the last session's date, the member id of the
member-month, scrubbed (ready or held with reasons), audited, picked up by submission and
valid as an 837P (pyx12); nothing for members below the threshold, off the roster or under
capitation; a retried close creates nothing twice (and the unique index refuses it)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from devtools.payer_simulator import DenialReason
from services.billing import pmpm, pmpm_claims, pmpm_close
from services.billing.domain.pmpm import add_months, month_start
from services.billing.submission import SubmissionConfig, record_batches
from services.billing.tables import claim_lines, claims, sessions
from services.billing.tables_submission import batches
from services.coverage.domain.contracts import FeeScheduleEntry, MonthlyCode, PaymentMode
from services.coverage.tables import patients, payers
from shared import audit
from shared.clock import utc_today
from shared.errors import Conflict
from shared.uow import SharedConnectionDatabase
from shared.x12.validate import validate_x12
from tests.fixtures.sessions import BASE_SESSION, session_payload
from tests.integration.claims.helpers import PHARMACY
from tests.integration.conftest import Keys
from tests.integration.pmpm.helpers import COVERAGE, World, pmpm_terms
from tests.integration.remittance.helpers import file_837, remits, simulator

MARCH = date(2026, 3, 1)
CLOSE_DAY = date(2026, 4, 5)
FEES = (
    FeeScheduleEntry("99490", None, 6000, 5000, date(2025, 1, 1)),
    FeeScheduleEntry("99439", None, 5000, 4000, date(2025, 1, 1)),
)
# 99490 from 20 min, then one 99439 per further full 20 min, at most 2.
CODES = (MonthlyCode("99490", 20, "99439", 20, 2),)
INTERVENTION = BASE_SESSION["interventions"][0]


async def world(
    db: SharedConnectionDatabase, tenant: str, mode: PaymentMode = PaymentMode.MONTHLY_CLAIM
) -> World:
    return await World(db.conn, tenant).setup(pmpm_terms(mode=mode, monthly_codes=CODES), fees=FEES)


async def member(w: World, m: str, start: date = date(2026, 1, 1), end: date | None = None) -> None:
    """A member on the roster from `start`, with the name and address an 837P needs."""
    await w.span(m, start, end)
    await w.conn.execute(
        update(patients)
        .where(patients.c.id == w.patients[m])
        .values(
            first_name="Ada",
            last_name=f"Member{m}",
            address1="2 Oak St",
            city="Town",
            state="NY",
            zip="12345",
        )
    )


async def session(
    w: World,
    m: str,
    dos: date,
    minutes: int,
    interventions: int = 0,
    diagnoses: tuple[str, ...] = ("E11.9", "I10"),
) -> str:
    """A documented session as intake stores it (a full, valid payload)."""
    sid = str(uuid.uuid4())
    external = f"S-{uuid.uuid4().hex[:12]}"
    body = session_payload(
        external,
        patient_ref=w.refs[m],
        date_of_service=dos,
        documented_minutes=minutes,
        interventions=[INTERVENTION] * interventions,
        diagnoses=list(diagnoses),
        pharmacy=PHARMACY,
    )
    await w.conn.execute(
        insert(sessions).values(
            id=sid,
            tenant_id=w.tenant,
            external_id=external,
            body_hash="0" * 64,
            patient_ref=w.refs[m],
            date_of_service=dos,
            payload=body,
            state="priced",
        )
    )
    return sid


async def claims_of(w: World) -> dict[str, Any]:
    """The tenant's claims by member id, each with its lines."""
    rows = (await w.conn.execute(select(claims).where(claims.c.tenant_id == w.tenant))).all()
    out: dict[str, Any] = {}
    for r in rows:
        lines = (
            await w.conn.execute(
                select(claim_lines)
                .where(claim_lines.c.claim_id == r.id)
                .order_by(claim_lines.c.line_no)
            )
        ).all()
        member_id = (r.subscriber or {}).get("member_id") or str(r.patient_id)
        out[member_id] = (r, lines)
    return out


async def close(w: World, run_id: str, today: date = CLOSE_DAY) -> None:
    await pmpm.close_run(w.conn, tenant_id=w.tenant, run_id=run_id, actor="test", today=today)


async def march_world(db: SharedConnectionDatabase, tenant: str) -> tuple[World, dict[str, Any]]:
    """R1 (45 min over two sessions: 99490 + 99439 x1), R2 (100 min: 99490 + 99439 x2,
    capped), R3 (19 min: below the threshold), R4 (no session), R5 (25 min, but coverage ended
    on the 10th, before its last session: billable under first_of_month, held by the scrubber),
    X9 (paid, not on the roster)."""
    w = await world(db, tenant)
    for m in ("R1", "R2", "R3", "R4"):
        await member(w, m)
    await member(w, "R5", end=date(2026, 3, 10))
    ids = {
        "R1a": await session(w, "R1", date(2026, 3, 3), 25, 1),
        "R1b": await session(w, "R1", date(2026, 3, 20), 20, 0, ("I10", "E78.5")),
        "R2": await session(w, "R2", date(2026, 3, 10), 100, 2),
        "R3": await session(w, "R3", date(2026, 3, 10), 19, 1),
        "R5a": await session(w, "R5", date(2026, 3, 3), 15, 1),
        "R5b": await session(w, "R5", date(2026, 3, 20), 10, 0),
    }
    await w.session("R4", date(2026, 2, 27), 60)  # February: not March's activity
    await w.pay_csv("member_id,month,amount\nR1,2026-03,90.00\nX9,2026-03,25.00\n")
    return w, ids


# ----------------------------------------------------------------------------- the close


async def test_closing_the_month_bills_each_billable_member_month(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    w, sids = await march_world(db, tenant)
    run = await w.run(MARCH)
    lines = await w.lines(run.run_id)
    assert {m: (x.monthly_code, x.addon_units) for m, x in lines.items()} == {
        "R1": ("99490", 1),
        "R2": ("99490", 2),
        "R3": (None, 0),
        "R4": (None, 0),
        "R5": ("99490", 0),
        "X9": (None, 0),
    }
    assert await claims_of(w) == {}  # a run alone bills nothing
    await close(w, run.run_id)

    got = await claims_of(w)
    assert sorted(got) == ["R1", "R2", "R5"]
    summary = {
        m: (
            r.status,
            r.date_of_service,
            r.total_charge_cents,
            r.expected_cents,
            [(x.procedure_code, x.units, x.charge_cents, x.expected_cents) for x in ls],
        )
        for m, (r, ls) in got.items()
    }
    assert summary == {
        "R1": (
            "ready",
            date(2026, 3, 20),
            11000,
            9000,
            [("99490", 1, 6000, 5000), ("99439", 1, 5000, 4000)],
        ),
        "R2": (
            "ready",
            date(2026, 3, 10),
            16000,
            13000,
            [("99490", 1, 6000, 5000), ("99439", 2, 10000, 8000)],
        ),
        "R5": ("on_hold", date(2026, 3, 20), 6000, 5000, [("99490", 1, 6000, 5000)]),
    }
    # The claims carry exactly the run's amounts.
    for m, (r, _) in got.items():
        assert (r.total_charge_cents, r.expected_cents) == (
            lines[m].charge_cents,
            lines[m].expected_cents,
        )

    r1, r1_lines = got["R1"]
    assert r1.session_id is None
    assert (r1.pmpm_period, str(r1.pmpm_run_id)) == (MARCH, run.run_id)
    assert (r1.claim_version, r1.frequency_code, r1.service_type) == (1, "1", "PMPM")
    assert str(r1.patient_id) == w.patients["R1"]
    assert (str(r1.payer_id), str(r1.contract_id), r1.contract_version) == (
        w.payer_id,
        w.contract_id,
        1,
    )
    assert r1.patient_ref == w.refs["R1"]
    assert r1.subscriber["member_id"] == "R1"
    assert r1.payer["x12_payer_id"] == f"P{w.payer_id[:6]}"
    assert r1.place_of_service == "01"
    assert r1.timely_filing_deadline == date(2026, 3, 20) + timedelta(days=95)
    assert r1.billing_tin == "123456789"
    assert r1.billing_provider["npi"] == PHARMACY["npi"]
    assert r1.rendering_provider["npi"] == BASE_SESSION["pharmacist"]["npi"]
    # The month's diagnoses, latest session first, each once; every line points at them.
    assert r1.diagnoses == ["I10", "E785", "E119"]
    assert [(x.date_of_service, x.diagnosis_pointers, x.modifiers) for x in r1_lines] == [
        (date(2026, 3, 20), [1, 2, 3], []),
        (date(2026, 3, 20), [1, 2, 3], []),
    ]
    assert (r1_lines[1].unit_charge_cents, r1_lines[1].unit_expected_cents) == (5000, 4000)
    assert r1.hold_reasons == []
    # The rationale says which sessions' minutes and interventions earned which codes.
    coding = r1.coding
    assert coding["kind"] == "pmpm_monthly"
    assert (coding["period"], coding["minutes"], coding["interventions"]) == ("2026-03", 45, 1)
    assert [s["session_id"] for s in coding["sessions"]] == [sids["R1a"], sids["R1b"]]
    why = coding["rationale"]
    assert "2026-03-03: 25 min, 1 intervention; 2026-03-20: 20 min, 0 interventions" in why
    assert "2026-03: 45 min and 1 intervention documented." in why
    assert "99490 x1 (at least 20 min; no rounding); 25 min beyond 20; 99439 x1" in why
    assert "99439 x1: charge 50.00, expected 40.00" in why
    assert "Date of service 2026-03-20: the month's last documented session" in why
    assert coding["rule_version"] == f"{w.contract_id}@v1"
    assert "99439 x2 (4 earned)" in got["R2"][0].coding["rationale"]

    # R5: billed for the month, held because the last session is after coverage ended.
    r5 = got["R5"][0]
    assert r5.payer is not None
    assert r5.subscriber["member_id"] == "R5"
    assert {h["code"] for h in r5.hold_reasons} == {"dos_outside_coverage"}  # claim + line
    assert r5.status_reason == "held for correction: dos_outside_coverage"

    # Audited: created (reason pmpm), then its first move; every chain verifies.
    for m, expected in (("R1", "claim.scrub_passed"), ("R5", "claim.hold")):
        events = await audit.history(
            w.conn, tenant_id=tenant, entity_type="claim", entity_id=str(got[m][0].id)
        )
        assert [e.action for e in events] == ["claim.created", expected]
        assert events[0].reason is not None
        assert events[0].reason.startswith("pmpm: ")
        assert events[0].after["pmpm_period"] == "2026-03-01"
        assert events[0].after["pmpm_run_id"] == run.run_id
        assert events[0].after["session_id"] is None
        assert audit.verify_chain(events).valid
    run_events = await audit.history(
        w.conn, tenant_id=tenant, entity_type="pmpm_run", entity_id=run.run_id
    )
    assert [e.action for e in run_events] == [
        "pmpm.run_created",
        "pmpm.month_closed",
        "pmpm.claims_created",
    ]
    assert run_events[-1].after["claims"] == 3
    assert run_events[-1].after["by_status"] == {"ready": 2, "on_hold": 1}
    assert audit.verify_chain(run_events).valid

    # Submission picks the ready ones up like any claim; the 837P passes pyx12.
    recorded, held = await record_batches(
        w.conn,
        SubmissionConfig(mailbox_dir=tmp_path / "mailbox"),
        actor="test",
        tenant_id=tenant,
    )
    assert held == []
    assert [b.claim_count for b in recorded] == [2]
    content = (
        await w.conn.execute(select(batches.c.content).where(batches.c.id == recorded[0].batch_id))
    ).scalar_one()
    x12 = bytes(content).decode("ascii")
    assert validate_x12(x12) == []
    assert f"CLM*{r1.patient_control_number}*110*" in x12
    assert "SV1*HC:99490*60*UN*1***1:2:3~" in x12
    assert "SV1*HC:99439*50*UN*1***1:2:3~" in x12
    assert "SV1*HC:99439*100*UN*2***1:2~" in x12
    assert "DTP*472*D8*20260320~" in x12
    assert "*MI*R1~" in x12
    assert "*MI*R2~" in x12
    assert "HI*ABK:I10*ABF:E785*ABF:E119~" in x12


async def test_retried_closes_never_bill_a_member_month_twice(
    db: SharedConnectionDatabase, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, _ = await march_world(db, tenant)
    run = await w.run(MARCH)
    monkeypatch.setattr(pmpm_claims, "CHUNK", 2)  # three member-months billed in two rounds
    await close(w, run.run_id)
    first = await claims_of(w)
    assert sorted(first) == ["R1", "R2", "R5"]
    assert len({r.patient_control_number for r, _ in first.values()}) == 3

    # The month is locked: closing again is refused and bills nothing.
    with pytest.raises(Conflict):
        await close(w, run.run_id)
    row = await pmpm.get_run_row(w.conn, tenant, run.run_id)

    # A retried job reaching the billing step again finds every member-month billed ...
    again = await pmpm_claims.create_claims(
        w.conn, tenant_id=tenant, run=row, actor="retry", today=CLOSE_DAY
    )
    assert (again.created, again.already_billed) == (0, 3)
    # ... and one racing past that check is stopped by the unique index (ON CONFLICT).
    monkeypatch.setattr(pmpm_claims, "_billed_patients", _nobody)
    raced = await pmpm_claims.create_claims(
        w.conn, tenant_id=tenant, run=row, actor="race", today=CLOSE_DAY
    )
    assert (raced.created, raced.already_billed) == (0, 3)
    after = await claims_of(w)
    assert {m: r.id for m, (r, _) in after.items()} == {m: r.id for m, (r, _) in first.items()}
    lines = (
        await w.conn.execute(
            text(
                "SELECT count(*) FROM billing.claim_lines l JOIN billing.claims c "
                "ON c.id = l.claim_id WHERE c.tenant_id = :t"
            ),
            {"t": tenant},
        )
    ).scalar_one()
    assert lines == 5  # R1 2, R2 2, R5 1: the skipped inserts left no lines behind
    created_events = (
        await w.conn.execute(
            text(
                "SELECT count(*) FROM audit.events WHERE tenant_id = :t "
                "AND entity_type = 'claim' AND action = 'claim.created'"
            ),
            {"t": tenant},
        )
    ).scalar_one()
    assert created_events == 3

    # The database itself refuses a second original claim for the member-month.
    original = first["R1"][0]
    copy = {k: v for k, v in original._mapping.items() if k not in ("created_at", "updated_at")}
    copy.update(id=str(uuid.uuid4()), patient_control_number=f"DUP-{uuid.uuid4().hex[:8]}")
    with pytest.raises(IntegrityError, match="uq_claims_pmpm_member_month"):
        async with w.conn.begin_nested():
            await w.conn.execute(insert(claims).values(**copy))
    # A claim bills a session or a member-month, never both or neither.
    for session_id, period in ((None, None), (str(uuid.uuid4()), MARCH)):
        copy.update(
            id=str(uuid.uuid4()),
            patient_control_number=f"X-{uuid.uuid4().hex[:8]}",
            session_id=session_id,
            pmpm_period=period,
            frequency_code="7",
        )
        with pytest.raises(IntegrityError, match="ck_claims_session_or_pmpm"):
            async with w.conn.begin_nested():
                await w.conn.execute(insert(claims).values(**copy))


async def _nobody(*_args: Any) -> set[str]:
    return set()


async def test_capitation_months_and_unbillable_member_months_make_no_claims(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    w = await world(db, tenant, PaymentMode.CAPITATION)
    for m in ("C1", "C2"):
        await member(w, m)
    await session(w, "C1", date(2026, 3, 5), 90, 2)
    run = await w.run(MARCH)
    await close(w, run.run_id)
    assert await claims_of(w) == {}
    run_events = await audit.history(
        w.conn, tenant_id=tenant, entity_type="pmpm_run", entity_id=run.run_id
    )
    assert [e.action for e in run_events] == ["pmpm.run_created", "pmpm.month_closed"]

    # A monthly_claim month: U1 is below the threshold; U2 reached it, but its only session
    # cannot be read back as a documented session (no provider to bill with): skipped, and
    # the run's trail says so.
    other = await world(db, tenant)
    await member(other, "U1")
    await member(other, "U2")
    await session(other, "U1", date(2026, 3, 5), 19, 3)
    await other.session("U2", date(2026, 3, 5), 30)  # a bare payload, not a SessionCreate
    quiet = await other.run(MARCH)
    await close(other, quiet.run_id)
    assert (
        await w.conn.execute(select(claims.c.id).where(claims.c.contract_id == other.contract_id))
    ).all() == []
    last = (
        await audit.history(
            w.conn, tenant_id=tenant, entity_type="pmpm_run", entity_id=quiet.run_id
        )
    )[-1]
    assert (last.action, last.after["claims"], last.after["billable_lines"]) == (
        "pmpm.claims_created",
        0,
        1,
    )
    assert last.after["skipped"] == [
        {"patient_id": other.patients["U2"], "reason": "no readable session"}
    ]


async def test_the_close_day_job_bills_last_month_once(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    """The cron path (close_contract_month) on the real clock: last month is run, closed and
    billed; the job running again the same day (a retry) bills nothing more."""
    today = utc_today()
    month = add_months(month_start(today), -1)
    w = await world(db, tenant)
    await member(w, "M1", start=add_months(month, -2))
    await session(w, "M1", month.replace(day=2), 30, 1)
    await session(w, "M1", month.replace(day=9), 15, 0)

    async def close_day() -> list[pmpm.RunRef]:
        return await pmpm_close.close_contract_month(
            w.conn,
            tenant_id=tenant,
            contract_id=w.contract_id,
            today=today,
            actor="cron",
            coverage=COVERAGE,
        )

    (ref,) = await close_day()
    assert ref.period == month
    got = await claims_of(w)
    assert list(got) == ["M1"]
    claim, lines = got["M1"]
    assert (claim.status, claim.date_of_service, claim.pmpm_period) == (
        "ready",
        month.replace(day=9),
        month,
    )
    assert [(x.procedure_code, x.units) for x in lines] == [("99490", 1), ("99439", 1)]
    assert await close_day() == []
    assert list(await claims_of(w)) == ["M1"]


async def test_claims_api_shows_the_member_month(
    client: httpx.AsyncClient, db: SharedConnectionDatabase, keys: Keys, tenant: str
) -> None:
    """POST /v1/pmpm/runs with close=true bills the month; the claim reads carry pmpm_period
    and pmpm_run_id (no session), and its history verifies."""
    month = add_months(month_start(utc_today()), -1)
    w = await world(db, tenant)
    await member(w, "A1", start=add_months(month, -2))
    await session(w, "A1", month.replace(day=4), 50, 1)
    await w.conn.execute(update(payers).where(payers.c.id == w.payer_id).values(name="Medicaid"))
    manager, biller = keys.headers("manager"), keys.headers("biller")
    resp = await client.post(
        "/v1/pmpm/runs",
        json={"contract_id": w.contract_id, "month": f"{month:%Y-%m}", "close": True},
        headers=manager,
    )
    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert run["status"] == "closed"

    page = (await client.get("/v1/claims", headers=biller)).json()
    assert len(page["items"]) == 1
    item = page["items"][0]
    assert (item["session_id"], item["pmpm_period"]) == (None, month.isoformat())
    assert (item["status"], item["total_charge"], item["expected"]) == ("ready", "110.00", "90.00")
    assert item["payer_name"] == "Medicaid"

    one = (await client.get(f"/v1/claims/{item['id']}", headers=biller)).json()
    assert one["session_id"] is None
    assert (one["pmpm_period"], one["pmpm_run_id"]) == (month.isoformat(), run["id"])
    assert one["service_type"] == "PMPM"
    assert one["date_of_service"] == month.replace(day=4).isoformat()
    assert one["subscriber"]["member_id"] == "A1"
    assert [(x["procedure_code"], x["units"], x["charge"]) for x in one["lines"]] == [
        ("99490", 1, "60.00"),
        ("99439", 1, "50.00"),
    ]
    assert "99439 x1" in one["coding"]["rationale"]

    hist = (await client.get(f"/v1/claims/{item['id']}/history", headers=biller)).json()
    assert hist["chain_valid"] is True
    assert [e["action"] for e in hist["events"]] == ["claim.created", "claim.scrub_passed"]
    assert hist["events"][0]["reason"].startswith("pmpm: ")

    # A hold and a release keep the read model whole (the claim re-scrubs clean).
    held = await client.post(
        f"/v1/claims/{item['id']}/hold", json={"reason": "check minutes"}, headers=biller
    )
    assert held.status_code == 200, held.text
    assert (held.json()["status"], held.json()["pmpm_period"]) == ("on_hold", month.isoformat())
    released = await client.post(
        f"/v1/claims/{item['id']}/release", json={"reason": "minutes ok"}, headers=biller
    )
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["session_id"]) == ("ready", None)


async def _denied_claim(
    client: httpx.AsyncClient,
    db: SharedConnectionDatabase,
    keys: Keys,
    tenant: str,
    denial: DenialReason,
    session_days: tuple[int, ...] = (4,),
) -> tuple[str, list[dict[str, Any]], Any, Any]:
    """A member-month's PMPM claim, submitted and denied by the simulator with `denial`:
    (claim id, its work items, the month, the run)."""
    month = add_months(month_start(utc_today()), -1)
    w = await world(db, tenant)
    await member(w, "D1", start=add_months(month, -2))
    for day in session_days:
        await session(w, "D1", month.replace(day=day), 50, 1)
    run = await w.run(month, today=utc_today())
    await pmpm.close_run(w.conn, tenant_id=tenant, run_id=run.run_id, actor="test")
    (claim, _), *_ = (await claims_of(w)).values()
    cid = str(claim.id)
    await w.conn.execute(
        text("UPDATE billing.claims SET status = 'submitted', version = version + 1 WHERE id = :i"),
        {"i": cid},
    )
    await audit.append(
        w.conn,
        tenant_id=tenant,
        entity_type="claim",
        entity_id=cid,
        action="claim.submit",
        actor="worker",
        reason="sent in a test batch",
        before={"status": "ready"},
        after={"status": "submitted"},
    )
    sim = simulator(deny_rate=1.0, denials=(denial,))
    for f in remits(sim.adjudicate_file("pmpm.x12", await file_837(db, [cid]))):
        posted = await client.post(
            "/v1/remittances", content=f.text.encode(), headers=keys.headers("manager")
        )
        assert posted.status_code == 201, posted.text
    biller = keys.headers("biller")
    items = (await client.get(f"/v1/work-items?claim={cid}", headers=biller)).json()["items"]
    return cid, items, month, run


async def test_a_denied_pmpm_claim_is_corrected_and_resubmitted(
    client: httpx.AsyncClient, db: SharedConnectionDatabase, keys: Keys, tenant: str
) -> None:
    """Denied CO-16 (missing information): the work queue's correct-and-resubmit sends a
    replacement (frequency 7) of the member-month's claim; the one-original-per-member-month
    rule does not stand in its way, and its 837P passes pyx12."""
    _cid, items, month, run = await _denied_claim(
        client, db, keys, tenant, DenialReason("missing", "CO", "16", ("M51",))
    )
    biller = keys.headers("biller")
    assert [i["recommended_action"] for i in items] == ["correct_resubmit"]
    resp = await client.post(
        f"/v1/work-items/{items[0]['id']}/actions/correct-resubmit",
        json={"reason": "diagnosis confirmed per M51", "diagnoses": ["E11.9"]},
        headers=biller,
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["claim_status"] == "replaced"
    new = (await client.get(f"/v1/claims/{out['new_claim_id']}", headers=biller)).json()
    assert (new["frequency_code"], new["status"], new["session_id"]) == ("7", "ready", None)
    assert new["claim_version"] == 2  # numbered within the member-month
    assert (new["pmpm_period"], new["pmpm_run_id"]) == (month.isoformat(), run.run_id)
    assert new["diagnoses"] == ["E119"]
    x12 = await file_837(db, [out["new_claim_id"]], isa13=3)
    assert validate_x12(x12) == []
    assert ":7*" in x12.split("CLM*", 1)[1].split("~", 1)[0]
    assert "REF*F8*" in x12


async def test_an_appeal_letter_for_a_pmpm_claim_lists_the_months_sessions(
    client: httpx.AsyncClient, db: SharedConnectionDatabase, keys: Keys, tenant: str
) -> None:
    _cid, items, month, _run = await _denied_claim(
        client, db, keys, tenant, DenialReason("necessity", "CO", "50", ()), session_days=(4, 18)
    )
    resp = await client.post(
        f"/v1/work-items/{items[0]['id']}/actions/appeal",
        json={"reason": "documented care management"},
        headers=keys.headers("biller"),
    )
    assert resp.status_code == 200, resp.text
    letter = resp.json()["appeal_letter"]
    assert "Interventions documented during the month's sessions:" in letter
    for day in (4, 18):
        assert f"  - {month.replace(day=day).isoformat()} " in letter


async def test_a_late_session_is_billed_by_the_retro_re_run(
    db: SharedConnectionDatabase, tenant: str
) -> None:
    """M2 was below the threshold when the month closed; a session documented later lifts it
    over. The next close day re-runs the closed month (an adjustment run, inside the retro
    window) and bills M2; M1, billed at the close, is not billed again."""
    today = utc_today()
    month = add_months(month_start(today), -1)
    w = await world(db, tenant)
    for m in ("M1", "M2"):
        await member(w, m, start=add_months(month, -2))
    await session(w, "M1", month.replace(day=2), 30, 1)
    await session(w, "M2", month.replace(day=3), 10, 1)

    async def close_day(day: date) -> list[pmpm.RunRef]:
        return await pmpm_close.close_contract_month(
            w.conn,
            tenant_id=tenant,
            contract_id=w.contract_id,
            today=day,
            actor="cron",
            coverage=COVERAGE,
        )

    await close_day(today)
    assert list(await claims_of(w)) == ["M1"]
    await session(w, "M2", month.replace(day=20), 15, 0)  # documented after the close
    refs = await close_day(add_months(today, 1))
    assert (month, "adjustment") in [(r.period, r.kind) for r in refs]
    got = await claims_of(w)
    assert sorted(got) == ["M1", "M2"]
    claim, lines = got["M2"]
    assert (claim.pmpm_period, claim.frequency_code, claim.date_of_service) == (
        month,
        "1",
        month.replace(day=20),
    )
    assert lines[0].procedure_code == "99490"
