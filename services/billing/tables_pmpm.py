"""PMPM tables (schema `billing`): versioned monthly runs, their member-month lines, imported
payments and month locks.

* ``pmpm_runs``: one row per run of a contract-month. A re-run is a new row with the next
  ``run_no``; earlier runs are never changed (except the one a close marks ``closed``).
  Runs after a close are ``adjustment`` runs whose lines carry the closed run's figures.
* ``pmpm_lines``: the member-month ledger and its reconciliation, one row per member per run
  (the ledger is the expected half: tier, rate, proration, activity, monthly codes; the
  reconciliation half is what was received, the classification and the variance). One table,
  because every run writes both halves for the same members in one statement. A line is
  identified by run, member id and patient id: no line numbers and no primary key (numbering
  a whole roster meant sorting it), only an index on run_id.
* ``pmpm_payment_imports`` / ``pmpm_payments``: payments from 835s (PLB CT, monthly-code claim
  lines), payer CSVs and 820s, each tied to a member and month. Re-importing the same file
  changes nothing (content hash).
* ``pmpm_month_locks``: a closed contract-month and the run it was closed on.

No foreign keys to coverage (another schema) and none from lines to runs: lines are written in
bulk (100,000s per statement) and only ever through their run.
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
from sqlalchemy.dialects.postgresql import JSONB, UUID

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

pmpm_lines = Table(
    "pmpm_lines",
    metadata,
    Column("run_id", UUID(as_uuid=False), nullable=False),
    # A line is (run, member id, patient id); no line numbers (see `line_order`).
    Column("member_id", String(80), nullable=False),
    Column("patient_id", UUID(as_uuid=False)),
    Column("patient_ref", String(100)),
    # Ledger: on the roster for the month under the proration rule.
    Column("on_roster", Boolean, nullable=False),
    Column("tier", String(40)),
    Column("rate_cents", BigInteger),
    Column("enrolled_days", SmallInteger, nullable=False, server_default="0"),
    Column("days_in_month", SmallInteger, nullable=False),
    Column("expected_cents", BigInteger, nullable=False, server_default="0"),
    Column("recorded_late", Boolean, nullable=False, server_default="false"),
    # Documented activity in the month (billing sessions).
    Column("minutes", Integer, nullable=False, server_default="0"),
    Column("interventions", Integer, nullable=False, server_default="0"),
    Column("activity_met", Boolean),
    # Monthly codes, where the contract bills by claim.
    Column("monthly_code", String(5)),
    Column("addon_code", String(5)),
    Column("addon_units", Integer, nullable=False, server_default="0"),
    Column("charge_cents", BigInteger, nullable=False, server_default="0"),
    # Payments.
    Column("received_cents", BigInteger, nullable=False, server_default="0"),
    Column("payment_count", Integer, nullable=False, server_default="0"),
    Column("recouped_cents", BigInteger, nullable=False, server_default="0"),
    Column("paid_tier", String(40)),
    # Reconciliation.
    Column("classification", String(30), nullable=False),
    Column("variance_cents", BigInteger, nullable=False),
    # Adjustment runs: the closed run's figures and what changed (new|changed|removed|same).
    Column("prior_classification", String(30)),
    Column("prior_expected_cents", BigInteger),
    Column("prior_received_cents", BigInteger),
    Column("change", String(10)),
    Column("work_item_id", UUID(as_uuid=False)),
    # Deduplicated B-tree: 100,000 lines of a run cost a few index pages, not 100,000 entries.
    Index("ix_pmpm_lines_run_id", "run_id"),
    schema="billing",
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
