"""pmpm_perf: PMPM lines without line numbers (identified by run, member id, patient id; an
index on run_id instead of the (run_id, line_no) primary key), so a run writes its lines
without sorting the whole roster

Revision ID: 20261127_pmpm_perf
Revises: 20261127_pmpm
Create Date: 2026-11-27 20:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261127_pmpm_perf"
down_revision: str | None = "20261127_pmpm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_pmpm_lines", "pmpm_lines", type_="primary", schema="billing")
    op.drop_column("pmpm_lines", "line_no", schema="billing")
    op.create_index("ix_pmpm_lines_run_id", "pmpm_lines", ["run_id"], schema="billing")


def downgrade() -> None:
    op.drop_index("ix_pmpm_lines_run_id", table_name="pmpm_lines", schema="billing")
    op.add_column("pmpm_lines", sa.Column("line_no", sa.Integer(), nullable=True), schema="billing")
    op.execute(
        """
        UPDATE billing.pmpm_lines l SET line_no = n.no
        FROM (
            SELECT ctid AS row_ref, row_number() OVER (
                       PARTITION BY run_id
                       ORDER BY member_id COLLATE "C", COALESCE(patient_id::text, '')) AS no
            FROM billing.pmpm_lines
        ) n
        WHERE l.ctid = n.row_ref
        """
    )
    op.alter_column("pmpm_lines", "line_no", nullable=False, schema="billing")
    op.create_primary_key("pk_pmpm_lines", "pmpm_lines", ["run_id", "line_no"], schema="billing")
