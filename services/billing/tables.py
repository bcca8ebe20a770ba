"""Billing tables (schema `billing`)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import metadata

SESSION_STATES = ("received", "awaiting_pricing", "priced", "failed")

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
        "state IN ('received','awaiting_pricing','priced','failed')", name="state_known"
    ),
    Index("ix_sessions_tenant_patient_dos", "tenant_id", "patient_ref", "date_of_service"),
    schema="billing",
)
