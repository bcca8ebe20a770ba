"""pmpm_chunks: PMPM lines stored compactly (one row per run per bucket of members, one array
per line field) and read through the view billing.pmpm_lines; a line's work item moves to
billing.pmpm_line_items. Writing a 100,000-member run becomes about 128 compressed rows instead
of 100,000 heap tuples and index entries.

Revision ID: 20261127_pmpm_chunks
Revises: 20261127_bill_other
Create Date: 2026-11-27 23:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "20261127_pmpm_chunks"
down_revision: str | None = "20261127_bill_other"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUCKETS = 128
# (name, array element type) in the view's order; frozen here (the app's copy may change).
ARRAYS: tuple[tuple[str, sa.types.TypeEngine], ...] = (
    ("member_id", sa.Text()),
    ("patient_id", pg.UUID(as_uuid=False)),
    ("patient_ref", sa.Text()),
    ("on_roster", sa.Boolean()),
    ("tier", sa.Text()),
    ("rate_cents", sa.BigInteger()),
    ("enrolled_days", sa.SmallInteger()),
    ("expected_cents", sa.BigInteger()),
    ("recorded_late", sa.Boolean()),
    ("minutes", sa.Integer()),
    ("interventions", sa.Integer()),
    ("activity_met", sa.Boolean()),
    ("monthly_code", sa.Text()),
    ("addon_code", sa.Text()),
    ("addon_units", sa.Integer()),
    ("charge_cents", sa.BigInteger()),
    ("received_cents", sa.BigInteger()),
    ("payment_count", sa.Integer()),
    ("recouped_cents", sa.BigInteger()),
    ("paid_tier", sa.Text()),
    ("classification", sa.Text()),
    ("prior_classification", sa.Text()),
    ("prior_expected_cents", sa.BigInteger()),
    ("prior_received_cents", sa.BigInteger()),
    ("change", sa.Text()),
)
NAMES = [n for n, _ in ARRAYS]

VIEW = f"""
CREATE VIEW billing.pmpm_lines AS
SELECT c.run_id, u.member_id, u.patient_id, u.patient_ref, u.on_roster, u.tier,
       u.rate_cents, u.enrolled_days, c.days_in_month, u.expected_cents, u.recorded_late,
       u.minutes, u.interventions, u.activity_met, u.monthly_code, u.addon_code,
       u.addon_units, u.charge_cents, u.received_cents, u.payment_count, u.recouped_cents,
       u.paid_tier, u.classification, u.received_cents - u.expected_cents AS variance_cents,
       u.prior_classification, u.prior_expected_cents, u.prior_received_cents, u.change,
       i.work_item_id
FROM billing.pmpm_line_chunks c
CROSS JOIN LATERAL unnest({", ".join(f"c.{n}" for n in NAMES)})
    AS u({", ".join(NAMES)})
LEFT JOIN billing.pmpm_line_items i ON i.run_id = c.run_id AND i.member_id = u.member_id
    AND i.patient_key = COALESCE(CAST(u.patient_id AS text), '')
"""  # noqa: S608 - constant names only

# lz4 where the server has it (fast); otherwise no compression at all (pglz costs more time
# than the WAL it saves for these arrays).
COMPRESSION = f"""
DO $$
DECLARE col text;
BEGIN
    FOREACH col IN ARRAY ARRAY[{", ".join(f"'{n}'" for n in NAMES)}] LOOP
        IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
                   AND 'lz4' = ANY(enumvals)) THEN
            EXECUTE format('ALTER TABLE billing.pmpm_line_chunks ALTER COLUMN %I '
                           'SET COMPRESSION lz4', col);
        ELSE
            EXECUTE format('ALTER TABLE billing.pmpm_line_chunks ALTER COLUMN %I '
                           'SET STORAGE EXTERNAL', col);
        END IF;
    END LOOP;
END $$
"""  # noqa: S608 - constant names only


def upgrade() -> None:
    op.create_table(
        "pmpm_line_chunks",
        sa.Column("run_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("days_in_month", sa.SmallInteger(), nullable=False),
        sa.Column("hash_sum", sa.Numeric(), nullable=True),
        sa.Column("owner_xid", sa.BigInteger(), nullable=True),
        *(sa.Column(n, pg.ARRAY(t), nullable=False) for n, t in ARRAYS),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("run_id", "bucket", name="pk_pmpm_line_chunks"),
        schema="billing",
    )
    op.execute(COMPRESSION)
    op.create_table(
        "pmpm_line_items",
        sa.Column("run_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("patient_key", sa.Text(), nullable=False),
        sa.Column("work_item_id", pg.UUID(as_uuid=False), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "member_id", "patient_key", name="pk_pmpm_line_items"),
        schema="billing",
    )
    op.execute(
        f"""
        INSERT INTO billing.pmpm_line_chunks (run_id, bucket, lines, days_in_month, hash_sum,
                                              {", ".join(NAMES)})
        SELECT run_id, (hashtext(member_id) & 2147483647) % {BUCKETS}, count(*),
               max(days_in_month), NULL, {", ".join(f"array_agg({n})" for n in NAMES)}
        FROM billing.pmpm_lines GROUP BY 1, 2
        """  # noqa: S608 - constant names only
    )
    op.execute(
        """
        INSERT INTO billing.pmpm_line_items (run_id, member_id, patient_key, work_item_id)
        SELECT run_id, member_id, COALESCE(patient_id::text, ''), work_item_id
        FROM billing.pmpm_lines WHERE work_item_id IS NOT NULL
        ON CONFLICT DO NOTHING
        """
    )
    op.drop_index("ix_pmpm_lines_run_id", table_name="pmpm_lines", schema="billing")
    op.drop_table("pmpm_lines", schema="billing")
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("ALTER VIEW billing.pmpm_lines RENAME TO pmpm_lines_view")
    op.create_table(
        "pmpm_lines",
        sa.Column("run_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("member_id", sa.String(80), nullable=False),
        sa.Column("patient_id", pg.UUID(as_uuid=False)),
        sa.Column("patient_ref", sa.String(100)),
        sa.Column("on_roster", sa.Boolean(), nullable=False),
        sa.Column("tier", sa.String(40)),
        sa.Column("rate_cents", sa.BigInteger()),
        sa.Column("enrolled_days", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("days_in_month", sa.SmallInteger(), nullable=False),
        sa.Column("expected_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("recorded_late", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("minutes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("interventions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("activity_met", sa.Boolean()),
        sa.Column("monthly_code", sa.String(5)),
        sa.Column("addon_code", sa.String(5)),
        sa.Column("addon_units", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("charge_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("received_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("payment_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("recouped_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("paid_tier", sa.String(40)),
        sa.Column("classification", sa.String(30), nullable=False),
        sa.Column("variance_cents", sa.BigInteger(), nullable=False),
        sa.Column("prior_classification", sa.String(30)),
        sa.Column("prior_expected_cents", sa.BigInteger()),
        sa.Column("prior_received_cents", sa.BigInteger()),
        sa.Column("change", sa.String(10)),
        sa.Column("work_item_id", pg.UUID(as_uuid=False)),
        schema="billing",
    )
    op.execute("INSERT INTO billing.pmpm_lines SELECT * FROM billing.pmpm_lines_view")
    op.execute("DROP VIEW billing.pmpm_lines_view")
    op.create_index("ix_pmpm_lines_run_id", "pmpm_lines", ["run_id"], schema="billing")
    op.drop_table("pmpm_line_items", schema="billing")
    op.drop_table("pmpm_line_chunks", schema="billing")
