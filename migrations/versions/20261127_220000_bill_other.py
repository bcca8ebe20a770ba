"""bill_other: claims.rebilled_from_claim_id links an original claim made for another payer
(work queue "bill another payer") to the denied claim of the same session it follows

Revision ID: 20261127_bill_other
Revises: 20261127_pmpm_perf
Create Date: 2026-11-27 22:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261127_bill_other"
down_revision: str | None = "20261127_pmpm_perf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable with no default: a catalog-only change, no table rewrite.
    op.add_column(
        "claims",
        sa.Column("rebilled_from_claim_id", sa.UUID(as_uuid=False), nullable=True),
        schema="billing",
    )


def downgrade() -> None:
    op.drop_column("claims", "rebilled_from_claim_id", schema="billing")
