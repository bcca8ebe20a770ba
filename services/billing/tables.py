"""Billing tables (schema `billing`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Sequence,
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

# received -> priced (a ready or held claim exists) | not_billable (its claim says why) |
# failed (the payload could not be processed). awaiting_pricing is the pre-claims step, kept
# so rows written before claims existed stay valid; the worker picks those up too.
SESSION_STATES = ("received", "awaiting_pricing", "priced", "not_billable", "failed")

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("external_id", String(100), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("patient_ref", String(100), nullable=False),
    Column("date_of_service", Date, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("state", String(20), nullable=False),
    Column("state_reason", String(200)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "external_id"),
    CheckConstraint(
        "state IN ('received','awaiting_pricing','priced','not_billable','failed')",
        name="state_known",
    ),
    Index("ix_sessions_tenant_patient_dos", "tenant_id", "patient_ref", "date_of_service"),
    schema="billing",
)


CLAIM_STATUSES = (
    "draft",
    "on_hold",
    "not_billable",
    "ready",
    "submitted",
    "accepted",
    "rejected",
    "paid",
    "partially_paid",
    "denied",
    "appealed",
    "replaced",
    "voided",
    "written_off",
    "closed",
)

# CLM01 numbers: one global sequence, so a patient control number is unique across tenants
# and never reused, whatever the tenant prefix in front of it.
claim_pcn_seq = Sequence("claim_pcn_seq", schema="billing", metadata=metadata)

claims = Table(
    "claims",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    # The documented session the claim bills; NULL for a PMPM claim (below), which bills a
    # member-month of a contract that pays by claim, not one session.
    Column("session_id", UUID(as_uuid=False)),
    # The claim series for one session: 1 = the original, a replacement (frequency 7) or a
    # void (8) is a new row with the next claim_version and the payer ICN of the one it fixes.
    Column("claim_version", Integer, nullable=False, server_default="1"),
    Column("frequency_code", String(1), nullable=False, server_default="1"),
    Column("patient_control_number", String(20), nullable=False, unique=True),
    Column("payer_icn", String(50)),
    Column("replaces_claim_id", UUID(as_uuid=False)),
    # An original claim for another payer (work queue "bill another payer"): the claim of the
    # same session that payer denied, closed when this one was created.
    Column("rebilled_from_claim_id", UUID(as_uuid=False)),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text),
    Column("patient_ref", String(100), nullable=False),
    # Coverage ids (no foreign keys cross the two schemas).
    Column("patient_id", UUID(as_uuid=False)),
    Column("payer_id", UUID(as_uuid=False)),
    Column("contract_id", UUID(as_uuid=False)),
    Column("contract_version", Integer),
    Column("service_type", String(20), nullable=False),
    Column("date_of_service", Date, nullable=False),
    Column("place_of_service", String(2)),
    Column("billing_tin", String(9), nullable=False),
    Column("total_charge_cents", BigInteger, nullable=False, server_default="0"),
    Column("expected_cents", BigInteger, nullable=False, server_default="0"),
    Column("timely_filing_deadline", Date),
    # Snapshots as sent / as decided, so the claim can be reproduced and proven later.
    Column("billing_provider", JSONB, nullable=False),
    Column("rendering_provider", JSONB, nullable=False),
    Column("subscriber", JSONB),
    Column("payer", JSONB),
    Column("diagnoses", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("coding", JSONB, nullable=False),
    Column("scrub", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("eligibility", JSONB, nullable=False),
    Column("hold_reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # A PMPM claim (services/billing/pmpm_claims.py): the member-month it bills (the month's
    # first day) and the closed run whose line it bills; patient_id and contract_id say whose.
    Column("pmpm_period", Date),
    Column("pmpm_run_id", UUID(as_uuid=False)),
    # Optimistic lock: every update sets version = version + 1 WHERE version = <read>.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Exactly one claim per session and claim version, however often the job runs (PMPM
    # claims have no session: NULLs never collide here).
    UniqueConstraint("tenant_id", "session_id", "claim_version"),
    CheckConstraint("(session_id IS NULL) <> (pmpm_period IS NULL)", name="session_or_pmpm"),
    # Exactly one original claim per PMPM member-month, however often the close is retried;
    # its replacements (7) and voids (8) are further claims of the same member-month.
    Index(
        "uq_claims_pmpm_member_month",
        "tenant_id",
        "contract_id",
        "patient_id",
        "pmpm_period",
        unique=True,
        postgresql_where=text("pmpm_period IS NOT NULL AND frequency_code = '1'"),
    ),
    # A member-month's claims number their versions like a session's (one row per number).
    Index(
        "uq_claims_pmpm_claim_version",
        "tenant_id",
        "contract_id",
        "patient_id",
        "pmpm_period",
        "claim_version",
        unique=True,
        postgresql_where=text("session_id IS NULL"),
    ),
    CheckConstraint(
        "status IN (" + ",".join(f"'{s}'" for s in CLAIM_STATUSES) + ")", name="status_known"
    ),
    CheckConstraint("frequency_code IN ('1','7','8')", name="frequency_known"),
    Index("ix_claims_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index(
        "ix_claims_tenant_id_patient_ref_date_of_service",
        "tenant_id",
        "patient_ref",
        "date_of_service",
    ),
    Index("ix_claims_tenant_id_status", "tenant_id", "status"),
    schema="billing",
)

claim_lines = Table(
    "claim_lines",
    metadata,
    Column(
        "claim_id",
        UUID(as_uuid=False),
        ForeignKey("billing.claims.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("line_no", SmallInteger, nullable=False),
    Column("procedure_code", String(5), nullable=False),
    Column("modifiers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("units", Integer, nullable=False),
    Column("unit_charge_cents", BigInteger, nullable=False),
    Column("unit_expected_cents", BigInteger, nullable=False),
    Column("charge_cents", BigInteger, nullable=False),
    Column("expected_cents", BigInteger, nullable=False),
    Column("date_of_service", Date, nullable=False),
    Column("diagnosis_pointers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    PrimaryKeyConstraint("claim_id", "line_no"),
    schema="billing",
)
