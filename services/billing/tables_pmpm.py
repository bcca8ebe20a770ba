"""PMPM tables (schema `billing`): versioned monthly runs, their member-month lines, imported
payments and month locks.

* ``pmpm_runs``: one row per run of a contract-month. A re-run is a new row with the next
  ``run_no``; earlier runs are never changed (except the one a close marks ``closed``).
  Runs after a close are ``adjustment`` runs whose lines carry the closed run's figures.
* ``pmpm_line_chunks``: the member-month ledger and its reconciliation, one line per member per
  run (the ledger is the expected half: tier, rate, proration, activity, monthly codes; the
  reconciliation half is what was received, the classification and the variance), stored as
  arrays in one row per run per bucket of members and read through the view ``pmpm_lines``.
  A line is identified by run, member id and patient id. ``pmpm_line_items`` holds the work
  item of each line that has one.
* ``pmpm_payment_imports`` / ``pmpm_payments``: payments from 835s (PLB CT, monthly-code claim
  lines), payer CSVs and 820s, each tied to a member and month. Re-importing the same file
  changes nothing (content hash).
* ``pmpm_month_locks``: a closed contract-month and the run it was closed on.

No foreign keys to coverage (another schema) and none from lines to runs: lines are written in
bulk (100,000s per run) and only ever through their run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.db import metadata

RUN_STATUSES = ("open", "closed")
RUN_KINDS = ("regular", "adjustment")
PAYMENT_SOURCES = ("835", "csv", "820")


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN (" + ",".join(f"'{v}'" for v in values) + ")"


pmpm_runs = Table(
    "pmpm_runs",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("payer_id", UUID(as_uuid=False), nullable=False),
    Column("contract_version", Integer, nullable=False),
    # The month, as its first day.
    Column("period", Date, nullable=False),
    Column("run_no", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    # For adjustment runs: the closed run the lines are compared with.
    Column("base_run_id", UUID(as_uuid=False)),
    Column("status", String(10), nullable=False, server_default="open"),
    Column("payment_mode", String(20), nullable=False),
    Column("proration", String(20), nullable=False),
    # Coverage versions recorded and payments imported up to this instant are the inputs.
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("summary", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # md5 over every line's result (prior_* / change excluded): equal hashes = same result.
    Column("lines_hash", String(32)),
    Column("actor", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", String(100)),
    UniqueConstraint("tenant_id", "contract_id", "period", "run_no"),
    CheckConstraint(_in("status", RUN_STATUSES), name="status_known"),
    CheckConstraint(_in("kind", RUN_KINDS), name="kind_known"),
    Index("ix_pmpm_runs_tenant_id_created_at", "tenant_id", "created_at"),
    schema="billing",
)

# The lines of a run, stored compactly: one row per run per bucket of members (a member's
# bucket is a hash of the member id modulo `LINE_BUCKETS`), each line field an array with one
# element per line, in the same order in every array. A 100,000-member run is about 128 rows
# instead of 100,000: writing it costs a few compressed TOAST values rather than 100,000 heap
# tuples and index entries (about a tenth of the WAL). Lines are read through the view
# `pmpm_lines` below, one row per line, and are never updated; which work item a line has is
# kept in `pmpm_line_items`.
LINE_BUCKETS = 128

# (name, element type, nullable elements) of each per-line array, in the view's order.
LINE_ARRAYS: tuple[tuple[str, Any], ...] = (
    ("member_id", Text),
    ("patient_id", UUID(as_uuid=False)),
    ("patient_ref", Text),
    ("on_roster", Boolean),
    ("tier", Text),
    ("rate_cents", BigInteger),
    ("enrolled_days", SmallInteger),
    ("expected_cents", BigInteger),
    ("recorded_late", Boolean),
    ("minutes", Integer),
    ("interventions", Integer),
    ("activity_met", Boolean),
    ("monthly_code", Text),
    ("addon_code", Text),
    ("addon_units", Integer),
    ("charge_cents", BigInteger),
    ("received_cents", BigInteger),
    ("payment_count", Integer),
    ("recouped_cents", BigInteger),
    ("paid_tier", Text),
    ("classification", Text),
    ("prior_classification", Text),
    ("prior_expected_cents", BigInteger),
    ("prior_received_cents", BigInteger),
    ("change", Text),
)
LINE_ARRAY_NAMES = tuple(name for name, _ in LINE_ARRAYS)

pmpm_line_chunks = Table(
    "pmpm_line_chunks",
    metadata,
    Column("run_id", UUID(as_uuid=False), nullable=False),
    Column("bucket", SmallInteger, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("days_in_month", SmallInteger, nullable=False),
    # Σ of each line's 64-bit hash (NULL for runs made without one); see pmpm_runs.lines_hash.
    Column("hash_sum", Numeric),
    # The id of the transaction that made the run: a parallel run's connections commit its
    # chunks before that transaction commits the run (see pmpm_reconcile.reconcile); chunks without a
    # run whose transaction has ended are swept (pmpm_reconcile.sweep_orphan_lines).
    Column("owner_xid", BigInteger),
    *(Column(name, ARRAY(kind), nullable=False) for name, kind in LINE_ARRAYS),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("run_id", "bucket"),
    schema="billing",
)

# The work item a line (run, member id, patient id or '') has, for the lines that need one.
pmpm_line_items = Table(
    "pmpm_line_items",
    metadata,
    Column("run_id", UUID(as_uuid=False), nullable=False),
    Column("member_id", Text, nullable=False),
    Column("patient_key", Text, nullable=False),
    Column("work_item_id", UUID(as_uuid=False), nullable=False),
    PrimaryKeyConstraint("run_id", "member_id", "patient_key"),
    schema="billing",
)

# A VIEW (its definition: migrations/versions/20261127_230000_pmpm_chunks.py; `is_view` keeps
# it out of Alembic's table comparison):
# one row per line, with the line's work item and its variance.
pmpm_lines = Table(
    "pmpm_lines",
    metadata,
    Column("run_id", UUID(as_uuid=False)),
    Column("member_id", Text),
    Column("patient_id", UUID(as_uuid=False)),
    Column("patient_ref", Text),
    Column("on_roster", Boolean),
    Column("tier", Text),
    Column("rate_cents", BigInteger),
    Column("enrolled_days", SmallInteger),
    Column("days_in_month", SmallInteger),
    Column("expected_cents", BigInteger),
    Column("recorded_late", Boolean),
    Column("minutes", Integer),
    Column("interventions", Integer),
    Column("activity_met", Boolean),
    Column("monthly_code", Text),
    Column("addon_code", Text),
    Column("addon_units", Integer),
    Column("charge_cents", BigInteger),
    Column("received_cents", BigInteger),
    Column("payment_count", Integer),
    Column("recouped_cents", BigInteger),
    Column("paid_tier", Text),
    Column("classification", Text),
    Column("variance_cents", BigInteger),
    Column("prior_classification", Text),
    Column("prior_expected_cents", BigInteger),
    Column("prior_received_cents", BigInteger),
    Column("change", Text),
    Column("work_item_id", UUID(as_uuid=False)),
    schema="billing",
    info={"is_view": True},
)


def line_order() -> tuple[Any, ...]:
    """The stable order of a run's lines (and of keyset pagination): member id in byte order,
    then patient id (none first)."""
    return (
        pmpm_lines.c.member_id.collate("C"),
        func.coalesce(cast(pmpm_lines.c.patient_id, Text), ""),
    )


pmpm_payment_imports = Table(
    "pmpm_payment_imports",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("source", String(10), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source_name", String(255)),
    Column("rows", Integer, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "contract_id", "source", "content_hash"),
    CheckConstraint(_in("source", PAYMENT_SOURCES), name="source_known"),
    schema="billing",
)

pmpm_payments = Table(
    "pmpm_payments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("import_id", UUID(as_uuid=False), nullable=False),
    # Row in the CSV (header = 1), or position of the PLB pair / service line in the 835.
    Column("row_no", Integer, nullable=False),
    Column("source", String(10), nullable=False),
    Column("member_id", String(80), nullable=False),
    Column("period", Date, nullable=False),
    # Money to us is positive; a recoupment is negative.
    Column("amount_cents", BigInteger, nullable=False),
    Column("tier", String(40)),
    Column("paid_date", Date),
    Column("reference", String(80)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("import_id", "row_no"),
    CheckConstraint(_in("source", PAYMENT_SOURCES), name="source_known"),
    Index("ix_pmpm_payments_month", "tenant_id", "contract_id", "period", "member_id"),
    schema="billing",
)

pmpm_month_locks = Table(
    "pmpm_month_locks",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("period", Date, nullable=False),
    Column("run_id", UUID(as_uuid=False), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("closed_by", String(100), nullable=False),
    PrimaryKeyConstraint("tenant_id", "contract_id", "period"),
    schema="billing",
)
