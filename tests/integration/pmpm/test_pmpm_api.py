"""`/v1/pmpm` over HTTP: run, paginated lines, CSV, close, work items, CSV payments with bad
rows. The controller is mounted here if `services/billing/api/__init__.py` does not yet."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from litestar import Router

import services.app
from services.billing.api import billing_router
from services.billing.api.pmpm import PmpmController
from shared.config import Settings
from shared.uow import SharedConnectionDatabase
from tests.asgi import asgi_client
from tests.integration.conftest import Keys
from tests.integration.pmpm.helpers import World, pmpm_terms


def _with_pmpm() -> Router:
    router = billing_router()
    if any(route.path.startswith("/v1/pmpm") for route in router.routes):
        return router
    return Router(
        path="/", route_handlers=[router, Router(path="/v1", route_handlers=[PmpmController])]
    )


@pytest.fixture
async def api(
    settings: Settings, db: SharedConnectionDatabase, redis: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(services.app, "billing_router", _with_pmpm)
    app = services.app.create_app(settings, database=db, configure_logs=False)
    async with asgi_client(app) as c:
        yield c


async def test_run_read_csv_close_and_items(
    api: httpx.AsyncClient, db: SharedConnectionDatabase, keys: Keys, tenant: str
) -> None:
    w = await World(db.conn, tenant).setup(pmpm_terms())
    for m in ("A", "B", "C"):
        await w.span(m, date(2026, 1, 1))
    manager = keys.headers("manager")
    bad = await api.post(
        "/v1/pmpm/payments/csv",
        json={"contract_id": w.contract_id, "content": "member_id,month,amount\nA,2026-03,x\n"},
        headers=manager,
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["field"] == "rows[2].amount"
    ok = await api.post(
        "/v1/pmpm/payments/csv",
        json={
            "contract_id": w.contract_id,
            "content": "Member,Month,Paid\nA,2026-03,25.00\nB,2026-03,20.00\n",
            "columns": {"member_id": "Member", "month": "Month", "amount": "Paid"},
        },
        headers=manager,
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["total"] == "45.00"
    created = await api.post(
        "/v1/pmpm/runs", json={"contract_id": w.contract_id, "month": "2026-03"}, headers=manager
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["summary"]["expected"] == "75.00"
    assert run["summary"]["variance"] == "-30.00"
    assert run["kind"] == "regular"
    assert run["status"] == "open"
    auditor = keys.headers("auditor")
    page = await api.get(f"/v1/pmpm/runs/{run['id']}?limit=2", headers=auditor)
    assert page.status_code == 200, page.text
    body = page.json()
    assert [line["member_id"] for line in body["lines"]] == ["A", "B"]
    rest = await api.get(
        f"/v1/pmpm/runs/{run['id']}?limit=2&after={body['next_cursor']}", headers=auditor
    )
    assert [line["member_id"] for line in rest.json()["lines"]] == ["C"]
    assert rest.json()["next_cursor"] is None
    only = await api.get(f"/v1/pmpm/runs/{run['id']}?classification=missing", headers=auditor)
    assert [(x["member_id"], x["variance"]) for x in only.json()["lines"]] == [("C", "-25.00")]
    got_csv = await api.get(f"/v1/pmpm/runs/{run['id']}/lines.csv", headers=auditor)
    assert got_csv.status_code == 200
    assert got_csv.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(got_csv.text)))
    assert [(r["member_id"], r["classification"], r["variance"]) for r in records] == [
        ("A", "paid_as_expected", "0.00"),
        ("B", "underpaid", "-5.00"),
        ("C", "missing", "-25.00"),
    ]
    items = await api.post(f"/v1/pmpm/runs/{run['id']}/work-items", headers=manager)
    assert items.json()["lines_with_items"] == 2
    assert (
        await api.post(f"/v1/pmpm/runs/{run['id']}/close", headers=keys.headers("biller"))
    ).status_code == 403
    closed = await api.post(f"/v1/pmpm/runs/{run['id']}/close", headers=manager)
    assert closed.json()["status"] == "closed"
    listed = await api.get(f"/v1/pmpm/runs?contract={w.contract_id}", headers=auditor)
    assert [r["run_no"] for r in listed.json()["runs"]] == [1]
    assert (
        await api.post(
            "/v1/pmpm/runs", json={"contract_id": w.contract_id, "month": "2026-3"}, headers=manager
        )
    ).status_code == 422


def _x820(total: int, *individuals: tuple[str, int, date, date]) -> str:
    from datetime import datetime

    from shared.x12.envelope import ControlNumbers, Parties
    from shared.x12.x820 import Individual820, Premium820, Remittance820, build_820

    prem = Premium820(
        total,
        True,
        date(2026, 4, 5),
        "EFT820",
        "STATE MCD",
        "PHARMACY",
        tuple(
            Individual820(str(k), m, (Remittance820("AZ", f"P{k}", amount, None, begin, end),))
            for k, (m, amount, begin, end) in enumerate(individuals, start=1)
        ),
    )
    return build_820(
        [prem],
        parties=Parties("ZZ", "STATEMCD", "ZZ", "PHARMNET"),
        control=ControlNumbers(1, 1, 1),
        created_at=datetime(2026, 4, 5, 8, 0),
    )


async def test_820_payments(
    api: httpx.AsyncClient, db: SharedConnectionDatabase, keys: Keys, tenant: str
) -> None:
    w = await World(db.conn, tenant).setup(pmpm_terms())
    for m in ("A", "B"):
        await w.span(m, date(2026, 1, 1))
    manager = keys.headers("manager")
    march = (date(2026, 3, 1), date(2026, 3, 31))

    async def post(content: str) -> httpx.Response:
        return await api.post(
            "/v1/pmpm/payments/820",
            json={"contract_id": w.contract_id, "content": content, "source_name": "mar.820"},
            headers=manager,
        )

    unbalanced = await post(_x820(9_999, ("A", 2500, *march)))
    assert unbalanced.status_code == 422, unbalanced.text
    assert unbalanced.json()["code"] == "unbalanced_820"
    spans = await post(_x820(2500, ("A", 2500, date(2026, 3, 1), date(2026, 4, 30))))
    assert spans.status_code == 422, spans.text
    assert spans.json()["errors"][0]["field"] == "entries[1].period"
    assert (await post("not x12")).json()["code"] == "invalid_820"
    content = _x820(4500, ("A", 2500, *march), ("B", 2000, *march))
    ok = await post(content)
    assert ok.status_code == 201, ok.text
    assert (ok.json()["source"], ok.json()["rows"], ok.json()["total"]) == ("820", 2, "45.00")
    again = await post(content)
    assert again.json()["duplicate"] is True
    run = (
        await api.post(
            "/v1/pmpm/runs",
            json={"contract_id": w.contract_id, "month": "2026-03"},
            headers=manager,
        )
    ).json()
    lines = (await api.get(f"/v1/pmpm/runs/{run['id']}", headers=manager)).json()["lines"]
    assert {x["member_id"]: (x["received"], x["classification"]) for x in lines} == {
        "A": ("25.00", "paid_as_expected"),
        "B": ("20.00", "underpaid"),
    }


async def test_the_open_items_job_marks_its_outbox_row_processed(
    api: httpx.AsyncClient,
    db: SharedConnectionDatabase,
    keys: Keys,
    tenant: str,
    worker_ctx: dict[str, Any],
) -> None:
    """A run queues the job that opens its variance items through the outbox; the job marks
    the row processed, so the sweeper never sends it again."""
    from sqlalchemy import select

    from services.billing.pmpm_tasks import open_items_job_id, pmpm_open_work_items
    from shared.tables import outbox

    w = await World(db.conn, tenant).setup(pmpm_terms())
    await w.span("A", date(2026, 1, 1))
    run = (
        await api.post(
            "/v1/pmpm/runs",
            json={"contract_id": w.contract_id, "month": "2026-03"},
            headers=keys.headers("manager"),
        )
    ).json()

    async def processed() -> Any:
        return (
            await db.conn.execute(
                select(outbox.c.processed_at).where(outbox.c.job_id == open_items_job_id(run["id"]))
            )
        ).scalar_one()

    assert await processed() is None
    assert await pmpm_open_work_items(worker_ctx, run["id"], tenant) == 1  # A: missing
    assert await processed() is not None
