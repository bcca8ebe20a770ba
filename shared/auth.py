"""API keys, roles and tenant scoping.

A key looks like `mtm_<prefix>_<secret>`. Only its SHA-256 is stored (keys are 190 bits of
randomness, so a slow password hash buys nothing); the prefix finds the row. Lookups are
cached in process for `api_key_cache_seconds`, which keeps authentication off the database
on the hot path. Every route names a policy; `POLICY` is the one table of who may call what.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utc_now
from shared.errors import BadRequest, Forbidden, NotFound, Unauthorized
from shared.tables import api_keys


class Role(StrEnum):
    INTAKE = "intake"
    BILLER = "biller"
    MANAGER = "manager"
    AUDITOR = "auditor"
    ADMIN = "admin"


ALL_ROLES = frozenset(Role)
_R = Role

# The declared policy: route policy name -> roles allowed. Every non-public route names one;
# a route without an entry here is denied to everybody (fail closed), and the matrix test
# walks every route x role against this table.
POLICY: Mapping[str, frozenset[Role]] = {
    "sessions.create": frozenset({_R.INTAKE, _R.ADMIN}),
    "sessions.read": frozenset({_R.INTAKE, _R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "audit.read": frozenset({_R.AUDITOR, _R.MANAGER, _R.ADMIN}),
    "apikeys.manage": frozenset({_R.ADMIN}),
    "whoami": ALL_ROLES,
    "claims.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "claims.write": frozenset({_R.BILLER, _R.MANAGER, _R.ADMIN}),
    "coding.preview": frozenset({_R.INTAKE, _R.BILLER, _R.ADMIN}),
    "payers.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "payers.write": frozenset({_R.MANAGER, _R.ADMIN}),
    "contracts.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "contracts.write": frozenset({_R.MANAGER, _R.ADMIN}),
    "patients.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "patients.write": frozenset({_R.MANAGER, _R.ADMIN}),
    "rosters.import": frozenset({_R.MANAGER, _R.ADMIN}),
    "eligibility.check": frozenset({_R.INTAKE, _R.BILLER, _R.MANAGER, _R.ADMIN}),
    "pmpm.run": frozenset({_R.MANAGER, _R.ADMIN}),
    "pmpm.read": frozenset({_R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "pmpm.payments": frozenset({_R.MANAGER, _R.ADMIN}),
    "submissions.run": frozenset({_R.MANAGER, _R.ADMIN}),
    "batches.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "acks.ingest": frozenset({_R.MANAGER, _R.ADMIN}),
    "remittance.ingest": frozenset({_R.MANAGER, _R.ADMIN}),
    "remittance.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "work_items.read": frozenset({_R.BILLER, _R.MANAGER, _R.AUDITOR, _R.ADMIN}),
    "work_items.work": frozenset({_R.BILLER, _R.MANAGER, _R.ADMIN}),
    "reports.read": frozenset({_R.MANAGER, _R.AUDITOR, _R.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    prefix: str
    tenant_id: str
    role: Role

    @property
    def actor(self) -> str:
        return f"apikey:{self.prefix}"


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    principal: Principal


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key(key: str) -> str:
    """Return the prefix of a well-formed key, else raise Unauthorized."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "mtm" or len(parts[1]) != 12 or len(parts[2]) < 32:
        raise Unauthorized("the API key is malformed", code="invalid_api_key")
    return parts[1]


def validate_tenant(tenant_id: str) -> str:
    tenant_id = tenant_id.strip()
    if (
        not tenant_id
        or len(tenant_id) > 64
        or not all(c.isalnum() or c in "-_." for c in tenant_id)
    ):
        raise BadRequest(
            "tenant must be 1-64 letters, digits, '-', '_' or '.'", code="invalid_tenant"
        )
    return tenant_id


async def create_api_key(
    conn: AsyncConnection, *, tenant_id: str, role: str, label: str = ""
) -> NewKey:
    try:
        r = Role(role)
    except ValueError:
        raise BadRequest(
            f"unknown role {role!r}; one of: {', '.join(sorted(Role))}", code="invalid_role"
        ) from None
    tenant_id = validate_tenant(tenant_id)
    prefix = secrets.token_hex(6)
    key = f"mtm_{prefix}_{secrets.token_urlsafe(24)}"
    key_id = (
        await conn.execute(
            insert(api_keys)
            .values(
                prefix=prefix,
                key_hash=hash_key(key),
                tenant_id=tenant_id,
                role=r.value,
                label=label,
            )
            .returning(api_keys.c.id)
        )
    ).scalar_one()
    return NewKey(key, Principal(key_id, prefix, tenant_id, r))


async def revoke_api_key(conn: AsyncConnection, *, tenant_id: str, prefix: str) -> None:
    done = await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.prefix == prefix,
            api_keys.c.tenant_id == tenant_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=utc_now())
    )
    if done.rowcount == 0:
        raise NotFound("no such active API key", code="api_key_not_found")


class KeyCache:
    """prefix -> (hash, principal | None, expiry). Negative answers are cached too, briefly."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[str | None, Principal | None, float]] = {}

    def get(self, prefix: str) -> tuple[str | None, Principal | None] | None:
        hit = self._entries.get(prefix)
        if hit is None or hit[2] < time.monotonic():
            return None
        return hit[0], hit[1]

    def put(self, prefix: str, key_hash: str | None, principal: Principal | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        ttl = self.ttl if principal else min(self.ttl, 5.0)
        self._entries[prefix] = (key_hash, principal, time.monotonic() + ttl)

    def clear(self) -> None:
        self._entries.clear()


async def authenticate(conn_factory: Any, cache: KeyCache, authorization: str | None) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized(
            "send an API key as 'Authorization: Bearer <key>'",
            code="missing_api_key",
            action="ask an admin for a key: mtm-billing apikey create --tenant T --role R",
        )
    key = authorization[7:].strip()
    prefix = parse_key(key)
    cached = cache.get(prefix)
    if cached is None:
        async with conn_factory() as conn:
            row = (
                await conn.execute(
                    select(
                        api_keys.c.id, api_keys.c.key_hash, api_keys.c.tenant_id, api_keys.c.role
                    ).where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                )
            ).first()
        if row is None:
            cache.put(prefix, None, None)
            cached = (None, None)
        else:
            principal = Principal(row.id, prefix, row.tenant_id, Role(row.role))
            cache.put(prefix, row.key_hash, principal)
            cached = (row.key_hash, principal)
    stored_hash, found = cached
    if stored_hash is None or found is None or not hmac.compare_digest(stored_hash, hash_key(key)):
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key")
    return found


def authorize(principal: Principal, policy: str | None) -> None:
    allowed = POLICY.get(policy or "")
    if allowed is None or principal.role not in allowed:
        raise Forbidden(
            f"role {principal.role.value!r} may not call this route",
            code="forbidden",
            action="use a key with one of the roles: "
            + ", ".join(sorted(r.value for r in (allowed or frozenset()))),
        )
