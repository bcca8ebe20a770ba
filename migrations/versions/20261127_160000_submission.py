"""submission: 837P batches, batch claims, acknowledgments, control-number partners

Per-trading-partner control-number sequences (billing.cn_<hash>_isa/_gs/_st) are created by
the application on first use and listed in billing.control_number_partners; the downgrade
drops every one listed there.

Revision ID: 20261127_submission
Revises: 20261127_claims
Create Date: 2026-11-27 16:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261127_submission"
down_revision: str | None = "20261127_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("transport", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("claim_count", sa.Integer(), nullable=False),
        sa.Column("total_charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.String(length=15), nullable=False),
        sa.Column("trading_partner_id", sa.String(length=15), nullable=False),
        sa.Column("receiver_id", sa.String(length=80), nullable=False),
        sa.Column("payer_x12_id", sa.String(length=80), nullable=False),
        sa.Column("payer_name", sa.String(length=60), nullable=False),
        sa.Column("isa13", sa.Integer(), nullable=False),
        sa.Column("gs06", sa.Integer(), nullable=False),
        sa.Column("st02_first", sa.Integer(), nullable=False),
        sa.Column("set_count", sa.Integer(), nullable=False),
        sa.Column("batch_reference", sa.String(length=50), nullable=False),
        sa.Column("usage", sa.String(length=1), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("remote_ref", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('recorded','sent','failed')", name=op.f("ck_batches_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("file_name", name=op.f("uq_batches_file_name")),
        sa.UniqueConstraint(
            "sender_id",
            "trading_partner_id",
            "isa13",
            name=op.f("uq_batches_sender_id_trading_partner_id_isa13"),
        ),
        schema="billing",
    )
    op.create_index("ix_batches_gs06", "batches", ["gs06"], unique=False, schema="billing")
    op.create_index(
        "ix_batches_tenant_id_created_at_id",
        "batches",
        ["tenant_id", "created_at", "id"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "ix_batches_unconfirmed",
        "batches",
        ["created_at"],
        unique=False,
        schema="billing",
        postgresql_where=sa.text("status = 'recorded'"),
    )
    op.create_table(
        "batch_claims",
        sa.Column("batch_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("claim_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("patient_control_number", sa.String(length=20), nullable=False),
        sa.Column("claim_version", sa.Integer(), nullable=False),
        sa.Column("st02", sa.String(length=9), nullable=False),
        sa.Column("charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["billing.batches.id"],
            name=op.f("fk_batch_claims_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "claim_id", name=op.f("pk_batch_claims")),
        schema="billing",
    )
    op.create_index(
        "ix_batch_claims_claim_id", "batch_claims", ["claim_id"], unique=False, schema="billing"
    )
    op.create_index(
        "ix_batch_claims_patient_control_number",
        "batch_claims",
        ["patient_control_number"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "uq_batch_claims_active_claim",
        "batch_claims",
        ["claim_id"],
        unique=True,
        schema="billing",
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "acknowledgments",
        sa.Column("id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("batch_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("interchange_control_number", sa.String(length=9), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_by", sa.String(length=100), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('999','277CA')", name=op.f("ck_acknowledgments_kind_known")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["billing.batches.id"], name=op.f("fk_acknowledgments_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acknowledgments")),
        sa.UniqueConstraint(
            "tenant_id", "content_hash", name=op.f("uq_acknowledgments_tenant_id_content_hash")
        ),
        schema="billing",
    )
    op.create_index(
        "ix_acknowledgments_batch_id",
        "acknowledgments",
        ["batch_id"],
        unique=False,
        schema="billing",
    )
    op.create_table(
        "ack_claims",
        sa.Column("ack_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("claim_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("patient_control_number", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column(
            "codes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("payer_claim_id", sa.String(length=50), nullable=True),
        sa.Column("applied_status", sa.String(length=20), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "outcome IN ('accepted','received','rejected','other')",
            name=op.f("ck_ack_claims_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["ack_id"],
            ["billing.acknowledgments.id"],
            name=op.f("fk_ack_claims_ack_id_acknowledgments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ack_id", "claim_id", name=op.f("pk_ack_claims")),
        schema="billing",
    )
    op.create_index(
        "ix_ack_claims_batch_id", "ack_claims", ["batch_id"], unique=False, schema="billing"
    )
    op.create_index(
        "ix_ack_claims_claim_id", "ack_claims", ["claim_id"], unique=False, schema="billing"
    )
    op.create_table(
        "control_number_partners",
        sa.Column("sender_id", sa.String(length=15), nullable=False),
        sa.Column("receiver_id", sa.String(length=15), nullable=False),
        sa.Column("sequence_prefix", sa.String(length=60), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "sender_id", "receiver_id", name=op.f("pk_control_number_partners")
        ),
        sa.UniqueConstraint(
            "sequence_prefix", name=op.f("uq_control_number_partners_sequence_prefix")
        ),
        schema="billing",
    )


def downgrade() -> None:
    # The per-partner sequences the application created (see the module docstring).
    op.execute(
        """
        DO $$
        DECLARE p text;
        BEGIN
            FOR p IN SELECT sequence_prefix FROM billing.control_number_partners LOOP
                EXECUTE format('DROP SEQUENCE IF EXISTS billing.%I', p || '_isa');
                EXECUTE format('DROP SEQUENCE IF EXISTS billing.%I', p || '_gs');
                EXECUTE format('DROP SEQUENCE IF EXISTS billing.%I', p || '_st');
            END LOOP;
        END $$;
        """
    )
    op.drop_table("control_number_partners", schema="billing")
    op.drop_index("ix_ack_claims_claim_id", table_name="ack_claims", schema="billing")
    op.drop_index("ix_ack_claims_batch_id", table_name="ack_claims", schema="billing")
    op.drop_table("ack_claims", schema="billing")
    op.drop_index("ix_acknowledgments_batch_id", table_name="acknowledgments", schema="billing")
    op.drop_table("acknowledgments", schema="billing")
    op.drop_index(
        "uq_batch_claims_active_claim",
        table_name="batch_claims",
        schema="billing",
        postgresql_where=sa.text("active"),
    )
    op.drop_index(
        "ix_batch_claims_patient_control_number", table_name="batch_claims", schema="billing"
    )
    op.drop_index("ix_batch_claims_claim_id", table_name="batch_claims", schema="billing")
    op.drop_table("batch_claims", schema="billing")
    op.drop_index(
        "ix_batches_unconfirmed",
        table_name="batches",
        schema="billing",
        postgresql_where=sa.text("status = 'recorded'"),
    )
    op.drop_index("ix_batches_tenant_id_created_at_id", table_name="batches", schema="billing")
    op.drop_index("ix_batches_gs06", table_name="batches", schema="billing")
    op.drop_table("batches", schema="billing")
