"""Submission tables (schema `billing`): 837P batches, the claims in each, acknowledgments
(999 / 277CA, stored verbatim) and what each said about each claim, and the registry of
per-trading-partner control-number sequences.

A batch row is written, with its file bytes and control numbers, and committed BEFORE the
file is sent; it becomes `sent` (and its claims `submitted`) only after the transport
confirms. `batch_claims.active` is true while the batch holds the claim (recorded or failed,
not yet confirmed); a partial unique index makes it impossible for two batches to hold the
same claim at once, whatever two concurrent runs do.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import metadata

BATCH_STATUSES = ("recorded", "sent", "failed")

batches = Table(
    "batches",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("transport", String(20), nullable=False),
    Column("file_name", String(200), nullable=False, unique=True),
    Column("content_hash", String(64), nullable=False),
    # The exact bytes sent (and re-sent after a crash): never rebuilt.
    Column("content", LargeBinary, nullable=False),
    Column("byte_size", Integer, nullable=False),
    Column("claim_count", Integer, nullable=False),
    Column("total_charge_cents", BigInteger, nullable=False),
    # Envelope: ISA06 / ISA08 (trading partner), 1000B receiver, 2010BB payer.
    Column("sender_id", String(15), nullable=False),
    Column("trading_partner_id", String(15), nullable=False),
    Column("receiver_id", String(80), nullable=False),
    Column("payer_x12_id", String(80), nullable=False),
    Column("payer_name", String(60), nullable=False),
    Column("isa13", Integer, nullable=False),
    Column("gs06", Integer, nullable=False),
    Column("st02_first", Integer, nullable=False),
    Column("set_count", Integer, nullable=False),
    Column("batch_reference", String(50), nullable=False),  # BHT03, echoed in 277CA TRN02
    Column("usage", String(1), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("remote_ref", Text),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("failed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('recorded','sent','failed')", name="status_known"),
    UniqueConstraint("sender_id", "trading_partner_id", "isa13"),
    Index("ix_batches_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_batches_unconfirmed", "created_at", postgresql_where=text("status = 'recorded'")),
    Index("ix_batches_gs06", "gs06"),
    schema="billing",
)

batch_claims = Table(
    "batch_claims",
    metadata,
    Column(
        "batch_id",
        UUID(as_uuid=False),
        ForeignKey("billing.batches.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("claim_id", UUID(as_uuid=False), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("patient_control_number", String(20), nullable=False),
    Column("claim_version", Integer, nullable=False),
    Column("st02", String(9), nullable=False),
    Column("charge_cents", BigInteger, nullable=False),
    # True while this batch holds the claim (not yet confirmed sent, or failed).
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("note", Text),
    PrimaryKeyConstraint("batch_id", "claim_id"),
    Index(
        "uq_batch_claims_active_claim",
        "claim_id",
        unique=True,
        postgresql_where=text("active"),
    ),
    Index("ix_batch_claims_claim_id", "claim_id"),
    Index("ix_batch_claims_patient_control_number", "patient_control_number"),
    schema="billing",
)

ACK_KINDS = ("999", "277CA")

acknowledgments = Table(
    "acknowledgments",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("file_name", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),  # verbatim, as received
    Column("source", String(20), nullable=False),  # inbox transport name or "upload"
    Column("batch_id", UUID(as_uuid=False), ForeignKey("billing.batches.id")),
    Column("interchange_control_number", String(9), nullable=False),
    Column("summary", JSONB, nullable=False),
    Column("received_by", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('999','277CA')", name="kind_known"),
    # The same file twice changes nothing.
    UniqueConstraint("tenant_id", "content_hash"),
    Index("ix_acknowledgments_batch_id", "batch_id"),
    schema="billing",
)

ack_claims = Table(
    "ack_claims",
    metadata,
    Column(
        "ack_id",
        UUID(as_uuid=False),
        ForeignKey("billing.acknowledgments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("claim_id", UUID(as_uuid=False), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("batch_id", UUID(as_uuid=False)),
    Column("patient_control_number", String(20), nullable=False),
    # accepted (A2 / 999 A) | received (A1) | rejected | other
    Column("outcome", String(20), nullable=False),
    Column("codes", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("effective_date", Date),
    Column("payer_claim_id", String(50)),
    # The claim status this acknowledgment moved the claim to (None: recorded only).
    Column("applied_status", String(20)),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("ack_id", "claim_id"),
    CheckConstraint("outcome IN ('accepted','received','rejected','other')", name="outcome_known"),
    Index("ix_ack_claims_claim_id", "claim_id"),
    Index("ix_ack_claims_batch_id", "batch_id"),
    schema="billing",
)

# One row per (ISA06 sender, ISA08 receiver) pair: the names of its PostgreSQL sequences
# (<prefix>_isa, <prefix>_gs, <prefix>_st), created on first use.
control_number_partners = Table(
    "control_number_partners",
    metadata,
    Column("sender_id", String(15), nullable=False),
    Column("receiver_id", String(15), nullable=False),
    Column("sequence_prefix", String(60), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("sender_id", "receiver_id"),
    schema="billing",
)
