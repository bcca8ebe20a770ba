"""Remittance (835) posting and the billing work queue (schema `billing`).

* ``remittance_files``: one row per distinct 835 received (verbatim text, TRN, payer, content
  hash); ``posted`` or ``quarantined`` with the reasons. Re-sending the same file finds the row.
* ``claim_payments`` / ``line_payments`` / ``remit_adjustments``: what each CLP/SVC/CAS said,
  matched to our claim (claim_id NULL when CLP01 matched nothing: a work item says so).
* ``provider_adjustments``: PLB entries (WO recoupment, FB forward balance, CT capitation, ...).
* ``work_items`` + ``work_item_notes``: the biller queue; ``appeals`` and ``write_offs`` are the
  outcomes the KPIs count.
* ``carc_codes`` / ``rarc_codes``: the versioned code tables, loaded from shared/codes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import metadata

REMIT_FILE_STATES = ("posted", "quarantined", "duplicate")
WORK_ITEM_STATUSES = ("open", "in_progress", "blocked", "resolved")
WRITE_OFF_REASONS = ("contractual", "timely_filing", "no_authorization", "other")
APPEAL_STATES = ("filed", "won", "lost", "withdrawn")


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN (" + ",".join(f"'{v}'" for v in values) + ")"


remittance_files = Table(
    "remittance_files",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    # TRN02 of every ST in the file (comma-separated) and the payer (N1*PR N104 / TRN03).
    Column("trace_number", String(200), nullable=False, server_default=""),
    Column("payer_code", String(50), nullable=False, server_default=""),
    Column("payer_name", String(100)),
    Column("content_hash", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("source", String(20), nullable=False),  # upload | inbox
    Column("source_name", String(255)),
    # A re-issued file (same payer and TRN, other envelope) points at the file it repeats.
    Column("duplicate_of", UUID(as_uuid=False)),
    Column("status", String(20), nullable=False),
    Column("quarantine_reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("payment_cents", BigInteger),
    Column("payment_method", String(10)),
    Column("payment_date", Date),
    Column("claim_count", Integer, nullable=False, server_default="0"),
    Column("matched_count", Integer, nullable=False, server_default="0"),
    Column("received_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "payer_code", "trace_number", "content_hash"),
    CheckConstraint(_in("status", REMIT_FILE_STATES), name="status_known"),
    Index("ix_remittance_files_tenant_id_created_at", "tenant_id", "created_at"),
    schema="billing",
)

claim_payments = Table(
    "claim_payments",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column(
        "remittance_file_id",
        UUID(as_uuid=False),
        ForeignKey("billing.remittance_files.id"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),  # position of the CLP in the file
    Column("claim_id", UUID(as_uuid=False)),  # NULL: CLP01 matched none of our claims
    Column("patient_control_number", String(38), nullable=False),
    Column("status_code", String(2), nullable=False),  # CLP02
    Column("charge_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("patient_resp_cents", BigInteger, nullable=False),
    Column("allowed_cents", BigInteger, nullable=False),
    Column("contractual_cents", BigInteger, nullable=False),
    Column("denied_cents", BigInteger, nullable=False),
    Column("payer_icn", String(50)),
    # A reversal (CLP02 22) points at the payment it takes back (matched by CLP07).
    Column("reverses_payment_id", UUID(as_uuid=False)),
    Column("filing_indicator", String(2)),
    Column("outcome", String(30), nullable=False),
    Column("remarks", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("payer_code", String(50), nullable=False, server_default=""),
    Column("remit_date", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("remittance_file_id", "seq"),
    Index("ix_claim_payments_tenant_id_claim_id", "tenant_id", "claim_id"),
    Index("ix_claim_payments_tenant_id_remit_date", "tenant_id", "remit_date"),
    Index("ix_claim_payments_tenant_id_payer_icn", "tenant_id", "payer_icn"),
    schema="billing",
)

line_payments = Table(
    "line_payments",
    metadata,
    Column(
        "claim_payment_id",
        UUID(as_uuid=False),
        ForeignKey("billing.claim_payments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", SmallInteger, nullable=False),
    Column("line_no", SmallInteger),  # matched claim line, when found
    Column("procedure_code", String(10), nullable=False),
    Column("modifiers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("units", Integer),
    Column("charge_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("allowed_cents", BigInteger, nullable=False),
    Column("patient_resp_cents", BigInteger, nullable=False),
    Column("service_date", Date),
    Column("remarks", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    PrimaryKeyConstraint("claim_payment_id", "seq"),
    schema="billing",
)

remit_adjustments = Table(
    "remit_adjustments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "claim_payment_id",
        UUID(as_uuid=False),
        ForeignKey("billing.claim_payments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("line_seq", SmallInteger),  # NULL: claim-level CAS
    Column("group_code", String(2), nullable=False),
    Column("carc", String(5), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("quantity", Integer),
    Column("kind", String(30), nullable=False),  # contractual | denial | patient_responsibility
    Index("ix_remit_adjustments_claim_payment_id", "claim_payment_id"),
    schema="billing",
)

provider_adjustments = Table(
    "provider_adjustments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column(
        "remittance_file_id",
        UUID(as_uuid=False),
        ForeignKey("billing.remittance_files.id"),
        nullable=False,
    ),
    Column("provider_id", String(50), nullable=False),
    Column("fiscal_period", Date),
    Column("reason_code", String(2), nullable=False),  # WO, FB, CT, L6, ...
    Column("reference", String(50)),
    # As on the wire: a positive PLB amount reduces the payment; CT capitation comes negative.
    Column("amount_cents", BigInteger, nullable=False),
    Column("payer_code", String(50), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_provider_adjustments_tenant_id_reason_code", "tenant_id", "reason_code"),
    schema="billing",
)

work_items = Table(
    "work_items",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    # Idempotency: source | claim or batch | primary reason code.
    Column("dedupe_key", String(300), nullable=False),
    Column("source", String(30), nullable=False),  # 835, 835_unmatched, 999, 277ca, submission
    Column("category", String(30), nullable=False),
    Column("claim_id", UUID(as_uuid=False)),
    Column("batch_id", String(64)),
    Column("claim_payment_id", UUID(as_uuid=False)),
    Column("payer_id", UUID(as_uuid=False)),
    Column("summary", Text, nullable=False),
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("primary_reason", String(20), nullable=False, server_default=""),
    Column("recommended_action", String(30), nullable=False),
    Column("recommendation", Text, nullable=False),
    Column("route", String(20), nullable=False),
    Column("amount_cents", BigInteger, nullable=False, server_default="0"),
    Column("timely_filing_deadline", Date),
    Column("appeal_deadline", Date),
    Column("no_appeal", Boolean, nullable=False, server_default="false"),
    Column("priority_score", Float, nullable=False, server_default="0"),
    Column("past_due", Boolean, nullable=False, server_default="false"),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("assignee", String(100)),
    Column("disposition", String(30)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True)),
    UniqueConstraint("tenant_id", "dedupe_key"),
    CheckConstraint(_in("status", WORK_ITEM_STATUSES), name="status_known"),
    # The queue: open items by priority (what `next` and the list read).
    Index(
        "ix_work_items_queue",
        "tenant_id",
        "priority_score",
        "id",
        postgresql_where=text("status = 'open'"),
    ),
    Index("ix_work_items_tenant_id_claim_id", "tenant_id", "claim_id"),
    Index("ix_work_items_tenant_id_status_assignee", "tenant_id", "status", "assignee"),
    schema="billing",
)

work_item_notes = Table(
    "work_item_notes",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "work_item_id",
        UUID(as_uuid=False),
        ForeignKey("billing.work_items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tenant_id", String(64), nullable=False),
    Column("author", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_work_item_notes_work_item_id", "work_item_id"),
    schema="billing",
)

appeals = Table(
    "appeals",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("claim_id", UUID(as_uuid=False), nullable=False),
    Column("work_item_id", UUID(as_uuid=False)),
    Column("payer_id", UUID(as_uuid=False)),
    Column("amount_cents", BigInteger, nullable=False),
    Column("deadline", Date),
    Column("letter", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default="filed"),
    Column("filed_on", Date, nullable=False),
    Column("decided_on", Date),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("status", APPEAL_STATES), name="status_known"),
    Index("ix_appeals_tenant_id_filed_on", "tenant_id", "filed_on"),
    schema="billing",
)

write_offs = Table(
    "write_offs",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("claim_id", UUID(as_uuid=False), nullable=False),
    Column("work_item_id", UUID(as_uuid=False)),
    Column("payer_id", UUID(as_uuid=False)),
    Column("reason", String(20), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("note", Text),
    Column("written_off_on", Date, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("reason", WRITE_OFF_REASONS), name="reason_known"),
    Index("ix_write_offs_tenant_id_written_off_on", "tenant_id", "written_off_on"),
    schema="billing",
)

carc_codes = Table(
    "carc_codes",
    metadata,
    Column("code", String(5), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("stop_date", Date),
    Column("description", Text, nullable=False),
    Column("category", String(30), nullable=False),
    Column("default_action", String(30), nullable=False),
    Column("table_version", String(64), nullable=False),  # hash of the CSV it came from
    PrimaryKeyConstraint("code", "start_date"),
    schema="billing",
)

rarc_codes = Table(
    "rarc_codes",
    metadata,
    Column("code", String(7), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("stop_date", Date),
    Column("description", Text, nullable=False),
    Column("category", String(30), nullable=False),
    Column("default_action", String(30), nullable=False),
    Column("no_appeal", Boolean, nullable=False, server_default="false"),
    Column("table_version", String(64), nullable=False),
    PrimaryKeyConstraint("code", "start_date"),
    schema="billing",
)
