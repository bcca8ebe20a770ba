"""pmpm_claims: a claim is made from a documented session or, for a PMPM contract that bills by
claim, from a closed member-month (no single session). claims.session_id becomes nullable;
pmpm_period (the month's first day) and pmpm_run_id (the closed run) identify a PMPM claim;
exactly one of session_id and pmpm_period is set; one original PMPM claim per tenant, contract,
patient and month.

Revision ID: 20261128_pmpm_claims
Revises: 20261127_pmpm_chunks
Create Date: 2026-11-28 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261128_pmpm_claims"
down_revision: str | None = "20261127_pmpm_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_claims_session_or_pmpm"
UNIQUE = "uq_claims_pmpm_member_month"
SERIES = "uq_claims_pmpm_claim_version"


def upgrade() -> None:
    # Catalog-only changes: dropping NOT NULL and adding nullable columns rewrite nothing.
    op.alter_column(
        "claims",
        "session_id",
        existing_type=sa.UUID(as_uuid=False),
        nullable=True,
        schema="billing",
    )
    op.add_column("claims", sa.Column("pmpm_period", sa.Date(), nullable=True), schema="billing")
    op.add_column(
        "claims", sa.Column("pmpm_run_id", sa.UUID(as_uuid=False), nullable=True), schema="billing"
    )
    # Every existing row has a session and no month, so the check passes. (Alembic runs the
    # whole upgrade in one transaction: the ALTER COLUMN's lock is held until it commits.)
    op.execute(
        f"ALTER TABLE billing.claims ADD CONSTRAINT {CHECK} "
        "CHECK ((session_id IS NULL) <> (pmpm_period IS NULL)) NOT VALID"
    )
    op.execute(f"ALTER TABLE billing.claims VALIDATE CONSTRAINT {CHECK}")
    # One original claim per member-month, whoever retries the close. Replacements (7) and
    # voids (8) of it are further claims of the same member-month, as for a session's claims.
    op.create_index(
        op.f(UNIQUE),
        "claims",
        ["tenant_id", "contract_id", "patient_id", "pmpm_period"],
        unique=True,
        schema="billing",
        postgresql_where=sa.text("pmpm_period IS NOT NULL AND frequency_code = '1'"),
    )
    # A member-month's claims (the original, its replacements and voids) number their
    # versions like a session's: one row per number (the session constraint skips NULLs).
    op.create_index(
        op.f(SERIES),
        "claims",
        ["tenant_id", "contract_id", "patient_id", "pmpm_period", "claim_version"],
        unique=True,
        schema="billing",
        postgresql_where=sa.text("session_id IS NULL"),
    )


def downgrade() -> None:
    # PMPM claims have no session, so the old schema cannot hold them; deleting billed claims
    # (with their batches, payments and audit trail elsewhere) is not a migration's call.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM billing.claims WHERE session_id IS NULL) THEN "
        "RAISE EXCEPTION 'billing.claims holds PMPM claims (no session): "
        "they must be removed by hand before downgrading below 20261128_pmpm_claims'; "
        "END IF; END $$"
    )
    op.drop_index(op.f(SERIES), table_name="claims", schema="billing")
    op.drop_index(op.f(UNIQUE), table_name="claims", schema="billing")
    op.drop_constraint(op.f(CHECK), "claims", type_="check", schema="billing")
    op.drop_column("claims", "pmpm_run_id", schema="billing")
    op.drop_column("claims", "pmpm_period", schema="billing")
    op.alter_column(
        "claims",
        "session_id",
        existing_type=sa.UUID(as_uuid=False),
        nullable=False,
        schema="billing",
    )
