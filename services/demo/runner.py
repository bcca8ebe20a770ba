"""The demo flow, step by step, through the real HTTP API (and the worker in the same process).

`run_demo(settings, size)` is used by `mtm-billing demo` and, at a smaller size, by the e2e
test. Every step talks HTTP to the running app with the keys a real deployment would use.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from services.demo import data
from shared.logging import get_logger

log = get_logger("demo")


@dataclass
class DemoSize:
    patients: int = 200
    sessions: int = 500
    seed: int = 20261127


@dataclass
class DemoKeys:
    admin: str
    manager: str
    biller: str
    intake: str
    auditor: str

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@dataclass
class DemoState:
    base_url: str
    keys: DemoKeys
    period_start: date
    period_end: date
    payers: dict[str, str] = field(default_factory=dict)
    contracts: dict[str, str] = field(default_factory=dict)
    session_ids: list[str] = field(default_factory=list)
    members: list[data.Member] = field(default_factory=list)
    pharmacy: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class DemoError(RuntimeError):
    pass


def _check(resp: httpx.Response, *ok: int) -> Any:
    if resp.status_code not in (ok or (200, 201)):
        raise DemoError(
            f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}: {resp.text[:500]}"
        )
    return resp.json() if resp.content else None


async def setup_payers(c: httpx.AsyncClient, st: DemoState) -> None:
    k = st.keys
    start = date(st.period_start.year, 1, 1)
    acme = _check(await c.post("/v1/payers", json=data.commercial_payer(), headers=k.h("manager")))
    mco = _check(await c.post("/v1/payers", json=data.medicaid_payer(), headers=k.h("manager")))
    st.payers = {"acme": acme["id"], "mco": mco["id"]}
    pe = _check(
        await c.post(
            "/v1/contracts",
            json=data.per_encounter_contract(acme["id"], start),
            headers=k.h("manager"),
        )
    )
    pm = _check(
        await c.post(
            "/v1/contracts", json=data.pmpm_contract(mco["id"], start), headers=k.h("manager")
        )
    )
    st.contracts = {"acme": pe["id"], "mco": pm["id"]}


async def import_rosters(
    c: httpx.AsyncClient, st: DemoState, rng: random.Random, size: DemoSize
) -> list[data.Member]:
    ms = data.members(rng, size.patients, st.period_start, st.period_end)
    for payer in ("acme", "mco"):
        rows = [m for m in ms if m.payer == payer]
        body = data.roster_csv(rng, rows).encode()
        _check(
            await c.post(
                f"/v1/rosters/csv?payer_id={st.payers[payer]}&contract_id={st.contracts[payer]}",
                content=body,
                headers={**st.keys.h("manager"), "content-type": "text/csv"},
            )
        )
    return ms


async def post_sessions(c: httpx.AsyncClient, st: DemoState, bodies: list[dict[str, Any]]) -> None:
    sem = asyncio.Semaphore(16)

    async def one(body: dict[str, Any]) -> str:
        async with sem:
            resp = await c.post("/v1/sessions", json=body, headers=st.keys.h("intake"))
            return str(_check(resp)["id"])

    st.session_ids = list(await asyncio.gather(*(one(b) for b in bodies)))


async def wait_for_sessions(
    c: httpx.AsyncClient, st: DemoState, max_seconds: float = 300
) -> dict[str, int]:
    """Until no session is still waiting for the worker; returns sessions by state."""
    deadline = time.monotonic() + max_seconds
    while True:
        states: dict[str, int] = {}
        for sid in st.session_ids[:: max(1, len(st.session_ids) // 50)]:
            s = _check(await c.get(f"/v1/sessions/{sid}", headers=st.keys.h("biller")))
            states[s["state"]] = states.get(s["state"], 0) + 1
        if states.get("received", 0) == 0 or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.5)


async def run_steps(base_url: str, keys: DemoKeys, size: DemoSize, today: date) -> DemoState:
    period_end = today
    month = today.month - 2
    year = today.year + (month - 1) // 12 if month > 0 else today.year - 1
    month = month if month > 0 else month + 12
    st = DemoState(base_url, keys, date(year, month, 1), period_end)
    rng = random.Random(size.seed)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as c:
        t = time.perf_counter()
        await setup_payers(c, st)
        ms = await import_rosters(c, st, rng, size)
        st.members = ms
        st.timings["setup"] = time.perf_counter() - t

        t = time.perf_counter()
        st.pharmacy = data.pharmacy(random.Random(f"{size.seed}:{base_url}:{keys.admin}"))
        bodies = data.sessions(rng, ms, size.sessions, st.period_start, st.period_end, st.pharmacy)
        await post_sessions(c, st, bodies)
        st.timings["intake"] = time.perf_counter() - t

        t = time.perf_counter()
        await wait_for_sessions(c, st)
        st.timings["worker"] = time.perf_counter() - t
    return st


# ----------------------------------------------------------------------------- later stages


async def submit(
    c: httpx.AsyncClient, st: DemoState, redis_url: str, queue_name: str, tag: str
) -> dict[str, Any]:
    """The worker's submission job (the same one its cron runs) sends the ready claims as
    837P batches through the directory transport; wait until none is left ready."""
    await run_worker_job(redis_url, queue_name, "submit_ready_claims", tag)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready = _check(
            await c.get(
                "/v1/claims", params={"status": "ready", "limit": 1}, headers=st.keys.h("biller")
            )
        )
        if not ready["items"]:
            break
        await asyncio.sleep(0.5)
    else:
        raise DemoError("the worker did not submit the ready claims within 300 s")
    batches = await all_pages(c, "/v1/batches", st.keys.h("manager"))
    return {
        "batches": len(batches),
        "claims": sum(b["batch"]["claim_count"] for b in batches),
    }


def simulate_payers(mailbox: Path, seed: int, capitation: list[Any]) -> dict[str, Any]:
    """The payer simulator (a development tool) answers with 999, 277CA and 835 files."""
    from devtools.payer_simulator import SimulatorRules, run_mailbox

    # Whole-file 999 rejections are rare in practice and, on a demo's two large files, would
    # reject half the claims at once; claim-level 277CA rejections and 835 denials show more.
    rules = SimulatorRules(seed=seed, capitation=tuple(capitation), reject_999_rate=0.0)
    summary = run_mailbox(mailbox, rules)
    return summary.as_json()


async def run_worker_job(redis_url: str, queue_name: str, name: str, tag: str) -> None:
    from arq.connections import ArqRedis

    redis = ArqRedis.from_url(redis_url)
    try:
        await redis.enqueue_job(name, _job_id=f"demo:{name}:{tag}", _queue_name=queue_name)
    finally:
        await redis.aclose()


def _inbox_files(inbox: Path) -> list[Path]:
    return [p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")]


async def wait_inbox_empty(inbox: Path, max_seconds: float = 300) -> None:
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        if not await asyncio.to_thread(_inbox_files, inbox):
            return
        await asyncio.sleep(0.5)
    raise DemoError(f"the worker did not empty {inbox} in {max_seconds:.0f} s")


async def all_pages(
    c: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[Any]:
    items: list[Any] = []
    after = None
    while True:
        q = {"limit": 100, **params, **({"after": after} if after else {})}
        page = _check(await c.get(path, params=q, headers=headers))
        items += page["items"]
        after = page.get("next_cursor") or page.get("next")
        if not after:
            return items


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def summary_text(report: dict[str, Any]) -> str:
    lines = ["", "=" * 78, "mtm-billing demo: summary", "=" * 78]
    lines.append(
        f"tenant {report['tenant']}; sessions {report['sessions']} over {report['period']}"
    )
    lines.append(f"sessions by state: {_fmt_counts(report['session_states'])}")
    lines.append(f"claims by status:  {_fmt_counts(report['claim_status'])}")
    sub = report.get("submission", {})
    lines.append(f"837P batches: {sub.get('batches', 0)} ({sub.get('claims', 0)} claims)")
    lines.append(f"payer simulator: {report.get('simulator', {}).get('counts', {})}")
    lines.append(
        f"835 files: {report.get('remittance_status', {})}; BPR02 total {report.get('bpr_total', '0.00')}"
    )
    lines.append("")
    lines.append("top work items (priority first):")
    for w in report.get("top_work_items", []):
        lines.append(
            f"  {w['priority_score']:7.2f}  {w['category']:<20} {w['amount']:>9}  "
            f"{w['recommended_action']:<18} {w['summary'][:60]}"
        )
    k = report.get("kpis")
    if k:
        lines.append("")
        lines.append("KPIs:")
        for name in (
            "clean_claim_rate",
            "first_pass_yield",
            "denial_rate_count",
            "denial_rate_dollars",
            "net_collection_rate",
            "days_in_ar",
        ):
            v = k.get(name) or {}
            shown = v.get("value") if name == "days_in_ar" else v.get("percent")
            lines.append(f"  {name:<22} {shown or 'n/a'}")
    for p in report.get("pmpm", []):
        lines.append("")
        lines.append(
            f"PMPM {p['month']}: expected {p['expected']}, received {p['received']}, "
            f"variance {p['variance']}; {_fmt_counts(p.get('classes', {}))}"
        )
    lines.append("")
    for label, value in report.get("where", {}).items():
        lines.append(f"{label:<14} {value}")
    lines.append("=" * 78)
    return "\n".join(lines)


def _months(start: date, end: date) -> list[date]:
    out = []
    m = date(start.year, start.month, 1)
    while m <= end:
        out.append(m)
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    return out


async def run_demo(
    base_url: str,
    keys: DemoKeys,
    size: DemoSize,
    today: date,
    *,
    mailbox: Path,
    redis_url: str,
    queue_name: str,
    tenant: str,
) -> dict[str, Any]:
    """The whole flow; returns the report `summary_text` prints (and the e2e test checks)."""
    from devtools.payer_simulator import CapitationPayment

    st = await run_steps(base_url, keys, size, today)
    rng = random.Random(size.seed + 1)
    report: dict[str, Any] = {
        "tenant": tenant,
        "sessions": len(st.session_ids),
        "period": f"{st.period_start} .. {st.period_end}",
        "payers": st.payers,
        "contracts": st.contracts,
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as c:
        t = time.perf_counter()
        report["submission"] = await submit(c, st, redis_url, queue_name, tenant)
        st.timings["submission"] = time.perf_counter() - t

        t = time.perf_counter()
        mco_members = [m for m in st.members if m.payer == "mco"]
        plan = data.capitation_plan(rng, mco_members, _months(st.period_start, st.period_end))
        capitation = [
            CapitationPayment(ref, month, cents, payer_id="SMMCO1", payee_npi=st.pharmacy["npi"])
            for ref, month, cents in plan
        ]
        report["simulator"] = await asyncio.to_thread(
            simulate_payers, mailbox, size.seed, capitation
        )
        st.timings["payer simulator"] = time.perf_counter() - t

        t = time.perf_counter()
        await run_worker_job(redis_url, queue_name, "ingest_acknowledgments", tenant)
        await run_worker_job(redis_url, queue_name, "ingest_remittances", tenant)
        await wait_inbox_empty(mailbox / "inbox")
        st.timings["acks + 835 ingestion"] = time.perf_counter() - t

        t = time.perf_counter()
        remits = await all_pages(c, "/v1/remittances", keys.h("manager"))
        report["remittances"] = len(remits)
        report["remittance_status"] = {
            s: sum(1 for r in remits if r["status"] == s) for s in {r["status"] for r in remits}
        }
        report["bpr_total"] = _sum_amounts(r["payment"] for r in remits if r["status"] == "posted")
        for r in remits:
            resp = await c.post(
                "/v1/pmpm/payments/remittance",
                json={"contract_id": st.contracts["mco"], "remittance_file_id": r["id"]},
                headers=keys.h("manager"),
            )
            if resp.status_code not in (200, 201, 422):
                _check(resp)
        pmpm = []
        for month in _months(st.period_start, st.period_end):
            run = _check(
                await c.post(
                    "/v1/pmpm/runs",
                    json={"contract_id": st.contracts["mco"], "month": month.strftime("%Y-%m")},
                    headers=keys.h("manager"),
                )
            )
            s = run["summary"]
            pmpm.append(
                {
                    "month": run["month"],
                    "run_id": run["id"],
                    "expected": s["expected"],
                    "received": s["received"],
                    "variance": s["variance"],
                    "classes": {
                        k: int(v.get("lines", 0)) for k, v in s["by_classification"].items()
                    },
                }
            )
            await c.post(f"/v1/pmpm/runs/{run['id']}/work-items", headers=keys.h("manager"))
        report["pmpm"] = pmpm
        st.timings["pmpm"] = time.perf_counter() - t

        claims = await all_pages(c, "/v1/claims", keys.h("biller"))
        counts: dict[str, int] = {}
        for cl in claims:
            counts[cl["status"]] = counts.get(cl["status"], 0) + 1
        report["claim_status"] = counts
        report["claims"] = len(claims)
        # Sessions by outcome, from their claims (one claim per session; no GET per session).
        claimed = {cl["session_id"]: cl["status"] for cl in claims}
        states: dict[str, int] = {}
        for sid in st.session_ids:
            state = claimed.get(sid)
            key = (
                "no claim yet"
                if state is None
                else ("not billable" if state == "not_billable" else "claimed")
            )
            states[key] = states.get(key, 0) + 1
        report["session_states"] = states
        items = _check(await c.get("/v1/work-items", params={"limit": 8}, headers=keys.h("biller")))
        report["top_work_items"] = items["items"]
        report["kpis"] = _check(
            await c.get(
                "/v1/reports/kpis",
                params={"from": st.period_start.isoformat(), "to": today.isoformat()},
                headers=keys.h("manager"),
            )
        )
    report["timings"] = {k: round(v, 2) for k, v in st.timings.items()}
    report["session_ids"] = st.session_ids
    return report


def _sum_amounts(values: Any) -> str:
    from decimal import Decimal

    total = sum((Decimal(v) for v in values if v), Decimal("0.00"))
    return f"{total:.2f}"
