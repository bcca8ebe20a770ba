"""PMPM reconciliation at scale: 100,000 members x 12 months (issue 8).

Target: reconciling all 12 months (ledger from coverage spans with proration, activity from
sessions, payments, classification, summaries) in under 5 s in total, under 500 MB resident.

Data is generated in SQL (so this process's memory is the reconciliation's): 100,000
patients with daily proration and two tiers; 10% start and 5% end inside the year, 3% change
tier mid-month (two spans in one month), 1% have an overlapping secondary span, 1% opt out,
2% have a later retro version; a session (20 min, 1 intervention) in every month for 25% of
the members and an activity requirement of 1 intervention; ~1.2 million payments (2% missing,
some underpaid, duplicated, and 500 members the roster does not know).

Uses MTM_BENCH_DATABASE_URL's server when set (database `mtm_bench_pmpm` is recreated on it),
else an embedded PostgreSQL under the temp folder.

Run: .venv/bin/python bench/bench_pmpm.py [--members 100000] [--rule daily]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from shared.db import asyncpg_dsn

DB_NAME = "mtm_bench_pmpm"
TENANT = "bench"
MONTHS = [date(2026, m, 1) for m in range(1, 13)]


def _server_url() -> str:
    url = os.environ.get("MTM_BENCH_DATABASE_URL")
    if url:
        return url
    from shared.embedded import start_postgres

    url, _server = start_postgres(
        Path(tempfile.gettempdir()) / "mtm-pmpm-bench-pg", database="postgres"
    )
    return url


def _with_db(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _recreate(server: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()


def _terms_json(rule: str) -> str:
    import msgspec

    from services.coverage.domain.contracts import (
        ActivityRequirement,
        BillingModel,
        ContractTerms,
        PmpmTerms,
        ProrationRule,
        TierRate,
    )
    from services.coverage.terms_codec import terms_to_json

    terms = ContractTerms(
        billing_model=BillingModel.PMPM,
        pmpm=PmpmTerms(
            rates=(TierRate("std", 2500), TierRate("high", 4000)),
            default_tier="std",
            proration=ProrationRule(rule),
            activity=ActivityRequirement(min_interventions=1),
        ),
    )
    return msgspec.json.encode(terms_to_json(terms)).decode()


SEED_SQL = [
    """INSERT INTO coverage.payers (id, tenant_id, name, x12_payer_id, receiver_id,
        receiver_name, claim_filing_indicator, timely_filing_days, appeal_window_days,
        transport, trading_partner_id)
       VALUES ($1, 'bench', 'Bench payer', 'BENCH1', 'R', 'R', 'MC', 95, 60, 'directory', 'T')""",
    """INSERT INTO coverage.contracts (id, tenant_id, payer_id, name)
       VALUES ($2, 'bench', $1, 'PMPM bench')""",
]

PATIENTS_SQL = """
INSERT INTO coverage.patients (id, tenant_id, patient_ref, first_name, last_name, birth_date,
                               sex)
SELECT md5('p' || i)::uuid, 'bench', 'P' || i, 'A', 'B', date '1950-01-01', 'F'
FROM generate_series(1, $1) i
"""

# Main spans: 85% from mid-2025, 10% start in 2026, 5% end in 2026; 3% end mid-month for a
# tier change (see TIER_CHANGE_SQL); recorded at the start of 2025.
SPANS_SQL = """
INSERT INTO coverage.coverage_span_versions (tenant_id, span_id, version, patient_id, payer_id,
    contract_id, member_id, relationship, priority, effective_from, effective_to, rate_tier,
    opt_out_date, population_flags, source, recorded_at)
SELECT 'bench', 'S' || i, 1, md5('p' || i)::uuid, $2, $3, 'M' || i, '18', 'primary',
       CASE WHEN i % 10 = 1 THEN date '2026-01-01' + (i % 360) ELSE date '2025-06-01' END,
       CASE WHEN i % 20 = 2 THEN date '2026-01-01' + (i % 360)
            WHEN i % 33 = 0 THEN date '2026-01-01' + (i % 360) ELSE NULL END,
       CASE WHEN i % 10 = 5 THEN 'high' ELSE NULL END,
       CASE WHEN i % 101 = 3 THEN date '2026-01-10' + (i % 330) ELSE NULL END,
       '{}', 'csv', timestamptz '2025-01-01 00:00+00'
FROM generate_series(1, $1) i
"""

TIER_CHANGE_SQL = """
INSERT INTO coverage.coverage_span_versions (tenant_id, span_id, version, patient_id, payer_id,
    contract_id, member_id, relationship, priority, effective_from, effective_to, rate_tier,
    population_flags, source, recorded_at)
SELECT 'bench', 'S' || i || 'b', 1, md5('p' || i)::uuid, $2, $3, 'M' || i, '18', 'primary',
       date '2026-01-01' + (i % 360) + 1, NULL, 'high', '{}', 'csv',
       timestamptz '2025-01-01 00:00+00'
FROM generate_series(1, $1) i WHERE i % 33 = 0
"""

OVERLAP_SQL = """
INSERT INTO coverage.coverage_span_versions (tenant_id, span_id, version, patient_id, payer_id,
    contract_id, member_id, relationship, priority, effective_from, effective_to, rate_tier,
    population_flags, source, recorded_at)
SELECT 'bench', 'S' || i || 'c', 1, md5('p' || i)::uuid, $2, $3, 'M' || i, '18', 'secondary',
       date '2026-03-10', date '2026-04-20', 'high', '{}', 'csv',
       timestamptz '2025-01-01 00:00+00'
FROM generate_series(1, $1) i WHERE i % 97 = 0
"""

RETRO_SQL = """
INSERT INTO coverage.coverage_span_versions (tenant_id, span_id, version, patient_id, payer_id,
    contract_id, member_id, relationship, priority, effective_from, effective_to, rate_tier,
    population_flags, source, recorded_at)
SELECT 'bench', 'S' || i, 2, md5('p' || i)::uuid, $2, $3, 'M' || i, '18', 'primary',
       date '2025-06-01', date '2026-09-30', NULL, '{}', 'csv',
       now() - interval '2 days'
FROM generate_series(1, $1) i WHERE i % 50 = 11
"""

SESSIONS_SQL = """
INSERT INTO billing.sessions (id, tenant_id, external_id, body_hash, patient_ref,
                              date_of_service, payload, state)
SELECT md5('s' || i || '-' || m)::uuid, 'bench', 'E' || i || '-' || m, repeat('0', 64),
       'P' || i, make_date(2026, m, 12),
       jsonb_build_object('documented_minutes', 20,
                          'interventions', jsonb_build_array(jsonb_build_object('type', 'x'))),
       'priced'
FROM generate_series(1, $1) i CROSS JOIN generate_series(1, 12) m
WHERE i % 4 = 0
"""

IMPORT_SQL = """
INSERT INTO billing.pmpm_payment_imports (id, tenant_id, contract_id, source, content_hash,
    rows, total_cents, actor, imported_at)
VALUES ($1, 'bench', $2, 'csv', 'bench', 0, 0, 'bench', now() - interval '1 day')
"""

PAYMENTS_SQL = """
INSERT INTO billing.pmpm_payments (tenant_id, contract_id, import_id, row_no, source,
    member_id, period, amount_cents, tier, recorded_at)
SELECT 'bench', $2::uuid, $3::uuid, (i * 12 + m) * 2 + d, 'csv', 'M' || i, make_date(2026, m, 1),
       CASE WHEN i % 200 = 3 THEN 2000 WHEN i % 10 = 5 THEN 4000 ELSE 2500 END, NULL,
       now() - interval '1 day'
FROM generate_series(1, $1) i CROSS JOIN generate_series(1, 12) m
     CROSS JOIN generate_series(0, 1) d
WHERE i % 50 <> 7 AND (d = 0 OR i % 500 = 9)
UNION ALL
SELECT 'bench', $2::uuid, $3::uuid, 100000000 + k * 12 + m, 'csv', 'X' || k, make_date(2026, m, 1), 2500,
       NULL, now() - interval '1 day'
FROM generate_series(1, 500) k CROSS JOIN generate_series(1, 12) m
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(server: str, members: int, rule: str, parallel: int) -> None:
    from sqlalchemy import select, text

    from services.billing import pmpm
    from services.billing.adapters.pmpm_coverage import InProcessPmpmCoverage
    from services.billing.tables_pmpm import pmpm_runs
    from shared import migrate
    from shared.db import create_engine

    await _recreate(server)
    url = _with_db(server, DB_NAME)
    migrate.upgrade(url)
    payer, contract, import_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    t = time.perf_counter()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(SEED_SQL[0], payer)
        await conn.execute(SEED_SQL[1], payer, contract)
        await conn.execute(
            "INSERT INTO coverage.contract_versions (contract_id, version, tenant_id, "
            "effective_from, terms) VALUES ($1, 1, 'bench', date '2025-01-01', $2::jsonb)",
            contract,
            _terms_json(rule),
        )
        await conn.execute(PATIENTS_SQL, members)
        for sql in (SPANS_SQL, TIER_CHANGE_SQL, OVERLAP_SQL, RETRO_SQL):
            await conn.execute(sql, members, payer, contract)
        await conn.execute(SESSIONS_SQL, members)
        await conn.execute(IMPORT_SQL, import_id, contract)
        await conn.execute(PAYMENTS_SQL, members, contract, import_id)
        await conn.execute("VACUUM ANALYZE")
        # Start the timed runs from a clean state: flush the setup's 1.5 M rows now, not in a
        # checkpoint during a measurement.
        await conn.execute("CHECKPOINT")
        spans = await conn.fetchval("SELECT count(*) FROM coverage.coverage_span_versions")
        pays = await conn.fetchval("SELECT count(*) FROM billing.pmpm_payments")
        sess = await conn.fetchval("SELECT count(*) FROM billing.sessions")
    finally:
        await conn.close()
    print(
        f"setup: {members:,} members, {spans:,} span versions, {sess:,} sessions, "
        f"{pays:,} payments in {time.perf_counter() - t:.1f} s (rule {rule})"
    )
    engine = create_engine(url, pool_size=2, max_overflow=0)
    coverage = InProcessPmpmCoverage()
    rss_before = _rss_mb()

    async def run(
        periods: list[date], with_hash: bool = False, workers: int = parallel
    ) -> tuple[float, list[pmpm.RunRef]]:
        start = time.perf_counter()
        async with engine.connect() as c, c.begin():
            refs = await pmpm.create_runs(
                c,
                tenant_id=TENANT,
                contract_id=contract,
                periods=periods,
                actor="bench",
                coverage=coverage,
                today=date(2026, 12, 31),
                with_hash=with_hash,
                parallel=workers,
            )
        return time.perf_counter() - start, refs

    # Warm-up (imports, statement preparation, caches) on one month.
    warm, _ = await run([MONTHS[0]])
    elapsed, refs = await run(MONTHS)
    one, _ = await run([MONTHS[5]])
    serial, _ = await run(MONTHS, workers=1)
    hashed, refs = await run(MONTHS, with_hash=True)
    again, refs2 = await run(MONTHS, with_hash=True)
    async with engine.connect() as c:
        rows = (
            await c.execute(
                select(pmpm_runs.c.id, pmpm_runs.c.lines_hash, pmpm_runs.c.summary).where(
                    pmpm_runs.c.id.in_([r.run_id for r in refs + refs2])
                )
            )
        ).all()
        lines = (
            await c.execute(
                text("SELECT count(*) FROM billing.pmpm_lines WHERE run_id = ANY(:ids)"),
                {"ids": [r.run_id for r in refs]},
            )
        ).scalar_one()
    await engine.dispose()
    by_id = {str(r.id): r for r in rows}
    identical = all(
        by_id[a.run_id].lines_hash == by_id[b.run_id].lines_hash
        for a, b in zip(refs, refs2, strict=True)
    )
    expected = sum(by_id[r.run_id].summary["expected_cents"] for r in refs)
    received = sum(by_id[r.run_id].summary["received_cents"] for r in refs)
    classes: dict[str, int] = {}
    for r in refs:
        for name, agg in by_id[r.run_id].summary["by_classification"].items():
            classes[name] = classes.get(name, 0) + agg["lines"]
    print(f"warm-up, one month: {warm:.2f} s")
    print(
        f"12 months in one batch ({parallel} connections): {elapsed:.2f} s ({lines:,} lines; "
        f"{lines / elapsed:,.0f} member-months/s); with line hashes: {hashed:.2f} s, "
        f"again {again:.2f} s; "
        f"identical lines on re-run: {identical}"
    )
    print(f"one month alone: {one:.2f} s; 12 months on one connection: {serial:.2f} s")
    print(
        f"expected {expected / 100:,.2f}, received {received / 100:,.2f}, "
        f"variance {(received - expected) / 100:,.2f}; lines by classification: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(classes.items()))
    )
    print(f"peak RSS: {_rss_mb():.0f} MB (before the runs {rss_before:.0f} MB)")
    target_ok = elapsed < 5 and _rss_mb() < 500
    print(f"targets (< 5 s, < 500 MB): {'met' if target_ok else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument(
        "--rule", default="daily", choices=["first_of_month", "fifteen_thirty", "daily"]
    )
    parser.add_argument(
        "--parallel", type=int, default=2, help="connections sharing the months (create_runs)"
    )
    args = parser.parse_args()
    asyncio.run(main(_server_url(), args.members, args.rule, args.parallel))
