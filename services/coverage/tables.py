"""Coverage tables (schema `coverage`). Every row carries `tenant_id`; no foreign keys leave
the schema. Coverage span history is append-only: a change is a new row in
`coverage_span_versions`, never an UPDATE."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.db import metadata

payers = Table(
    "payers",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    # 837P 2010BB NM1*PR*...*PI*<x12_payer_id>
    Column("x12_payer_id", String(80), nullable=False),
    # 1000B receiver
    Column("receiver_id", String(80), nullable=False),
    Column("receiver_name", String(60), nullable=False),
    # SBR09: MC, MB, CI, HM, ...
    Column("claim_filing_indicator", String(2), nullable=False),
    Column("timely_filing_days", Integer, nullable=False),
    Column("appeal_window_days", Integer, nullable=False),
    Column("transport", String(20), nullable=False),
    Column("trading_partner_id", String(15), nullable=False),
    # The payer's roster CSV header names (field -> header); NULL means the default names.
    Column("roster_columns", JSONB),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "x12_payer_id"),
    CheckConstraint("transport IN ('directory','http')", name="transport_known"),
    schema="coverage",
)

contracts = Table(
    "contracts",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("payer_id", UUID(as_uuid=False), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["payer_id"], ["coverage.payers.id"]),
    UniqueConstraint("tenant_id", "payer_id", "name"),
    schema="coverage",
)

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("version", Integer, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date),
    # ContractTerms as msgspec encodes the domain dataclass (amounts in integer cents).
    Column("terms", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("contract_id", "version"),
    ForeignKeyConstraint(["contract_id"], ["coverage.contracts.id"]),
    CheckConstraint("version >= 1", name="version_positive"),
    schema="coverage",
)

patients = Table(
    "patients",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    # The documentation system's reference (sessions carry it).
    Column("patient_ref", String(100), nullable=False),
    Column("first_name", String(60), nullable=False),
    Column("last_name", String(60), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("sex", String(1), nullable=False),
    Column("address1", String(100)),
    Column("address2", String(100)),
    Column("city", String(60)),
    Column("state", String(2)),
    Column("zip", String(10)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "patient_ref"),
    CheckConstraint("sex IN ('M','F','U')", name="sex_known"),
    schema="coverage",
)

coverage_span_versions = Table(
    "coverage_span_versions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    # The logical span every version shares (spans.roster_span_id for rosters and 271s).
    Column("span_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("patient_id", UUID(as_uuid=False), nullable=False),
    Column("payer_id", UUID(as_uuid=False), nullable=False),
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("member_id", String(80), nullable=False),
    Column("group_number", String(50)),
    Column("relationship", String(2), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date),
    Column("rate_tier", String(40)),
    Column("opt_out_date", Date),
    Column("population_flags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("source", String(10), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # The roster import that wrote this version (NULL for manual spans).
    Column("import_id", UUID(as_uuid=False)),
    ForeignKeyConstraint(["patient_id"], ["coverage.patients.id"]),
    UniqueConstraint("tenant_id", "span_id", "version"),
    CheckConstraint("priority IN ('primary','secondary','tertiary')", name="priority_known"),
    CheckConstraint("source IN ('csv','834','271','manual')", name="source_known"),
    Index("ix_coverage_span_versions_patient", "tenant_id", "patient_id"),
    Index("ix_coverage_span_versions_member", "tenant_id", "payer_id", "member_id"),
    schema="coverage",
)

roster_imports = Table(
    "roster_imports",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("payer_id", UUID(as_uuid=False), nullable=False),
    Column("contract_id", UUID(as_uuid=False), nullable=False),
    Column("format", String(4), nullable=False),
    # SHA-256 of the file bytes: the same file imported twice changes nothing.
    Column("content_hash", String(64), nullable=False),
    Column("summary", JSONB, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["payer_id"], ["coverage.payers.id"]),
    UniqueConstraint("tenant_id", "payer_id", "content_hash"),
    CheckConstraint("format IN ('csv','834','271')", name="format_known"),
    schema="coverage",
)
