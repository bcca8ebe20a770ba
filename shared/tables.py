"""Infrastructure tables: API keys and the job outbox (schema `core`), audit events (`audit`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import metadata

ROLES = ("intake", "biller", "manager", "auditor", "admin")

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # The public, non-secret part of a key (shown in lists); the secret is only hashed.
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("label", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint("role IN ('intake','biller','manager','auditor','admin')", name="role_known"),
    schema="core",
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("job_name", String(100), nullable=False),
    # Deterministic arq job id, e.g. "price_session:<uuid>": also the idempotency key.
    Column("job_id", String(200), nullable=False, unique=True),
    Column("args", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("enqueued_at", DateTime(timezone=True)),
    Column("processed_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index(
        "ix_outbox_pending",
        "job_name",
        "id",
        postgresql_where=text("processed_at IS NULL"),
    ),
    schema="core",
)

audit_events = Table(
    "events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("entity_type", String(40), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("action", String(60), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("request_id", String(64)),
    Column("reason", Text),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("tenant_id", "entity_type", "entity_id", "seq"),
    schema="audit",
)
