"""Routes both services share: the audit trail, API keys and `whoami`."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody, PathParameter

from services.billing.schemas import AuditEventRead, AuditTrailRead
from shared import audit
from shared.auth import Role, create_api_key, revoke_api_key
from shared.errors import NotFound
from shared.web import principal_of, runtime_of

ENTITY_TYPES = (
    "session",
    "claim",
    "batch",
    "work_item",
    "payer",
    "contract",
    "patient",
    "remittance",
    "pmpm_run",
)


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]

    @get(
        "/{entity_type:str}/{entity_id:str}",
        opt={"policy": "audit.read"},
        summary="History of one entity and whether its hash chain verifies",
    )
    async def trail(
        self,
        request: Request[Any, Any, Any],
        entity_type: Annotated[
            str, PathParameter(description="one of: " + ", ".join(ENTITY_TYPES))
        ],
        entity_id: Annotated[str, PathParameter(description="the entity's id")],
    ) -> AuditTrailRead:
        principal = principal_of(request)
        async with runtime_of(request).read_conn() as conn:
            events = await audit.history(
                conn, tenant_id=principal.tenant_id, entity_type=entity_type, entity_id=entity_id
            )
        if not events:
            raise NotFound(
                f"no audit history for {entity_type} {entity_id}", code="audit_not_found"
            )
        check = audit.verify_chain(events)
        return AuditTrailRead(
            entity_type=entity_type,
            entity_id=entity_id,
            chain_valid=check.valid,
            broken_at_seq=check.broken_at_seq,
            problem=check.problem,
            events=[
                AuditEventRead(
                    seq=e.seq,
                    action=e.action,
                    actor=e.actor,
                    occurred_at=e.occurred_at,
                    request_id=e.request_id,
                    reason=e.reason,
                    before=e.before,
                    after=e.after,
                    prev_hash=e.prev_hash,
                    hash=e.hash,
                )
                for e in events
            ],
        )


class ApiKeyCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""


class ApiKeyCreated(msgspec.Struct):
    key: str
    prefix: str
    tenant_id: str
    role: str
    note: str = "the key is shown once; store it now"


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["api keys"]

    @post(
        "/", opt={"policy": "apikeys.manage"}, summary="Create a key for this tenant (shown once)"
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ApiKeyCreate]
    ) -> ApiKeyCreated:
        principal = principal_of(request)
        rt = runtime_of(request)
        async with rt.uow() as uow:
            new = await create_api_key(
                uow.conn, tenant_id=principal.tenant_id, role=data.role, label=data.label
            )
            await audit.append(
                uow.conn,
                tenant_id=principal.tenant_id,
                entity_type="api_key",
                entity_id=new.principal.prefix,
                action="api_key.created",
                actor=principal.actor,
                after={"role": data.role.value, "label": data.label},
                new_entity=True,
            )
            await uow.commit()
        return ApiKeyCreated(
            new.key, new.principal.prefix, new.principal.tenant_id, new.principal.role.value
        )

    @delete(
        "/{prefix:str}", opt={"policy": "apikeys.manage"}, summary="Revoke a key of this tenant"
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        prefix: Annotated[str, PathParameter(description="key prefix")],
    ) -> None:
        principal = principal_of(request)
        rt = runtime_of(request)
        async with rt.uow() as uow:
            await revoke_api_key(uow.conn, tenant_id=principal.tenant_id, prefix=prefix)
            await audit.append(
                uow.conn,
                tenant_id=principal.tenant_id,
                entity_type="api_key",
                entity_id=prefix,
                action="api_key.revoked",
                actor=principal.actor,
            )
            await uow.commit()
        rt.keys.clear()


@get(
    "/v1/whoami",
    opt={"policy": "whoami"},
    tags=["api keys"],
    summary="The calling key's tenant and role",
)
async def whoami(request: Request[Any, Any, Any]) -> dict[str, str]:
    p = principal_of(request)
    return {"tenant_id": p.tenant_id, "role": p.role.value, "key_prefix": p.prefix}
