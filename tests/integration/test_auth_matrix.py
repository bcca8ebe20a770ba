"""Every route x every role against the one declared policy table (shared.auth.POLICY)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from services.app import create_app
from shared.auth import POLICY, Role
from shared.config import Settings
from tests.integration.conftest import Keys

PUBLIC_PATHS = {"/health", "/ready"}


def _routes(app: Litestar) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method == "OPTIONS":
                    continue
                out.append((method, route.path, dict(handler.opt)))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)


def test_every_non_public_route_names_a_declared_policy(settings: Settings) -> None:
    app = create_app(settings, configure_logs=False)
    for method, path, opt in _routes(app):
        if path.startswith("/schema") or path in PUBLIC_PATHS:
            assert opt.get("public") or path.startswith("/schema"), path
            continue
        assert opt.get("policy") in POLICY, f"{method} {path} has no declared policy"


async def test_route_role_matrix(client: Any, keys: Keys, settings: Settings) -> None:
    app = create_app(settings, configure_logs=False)
    checked = 0
    for method, path, opt in _routes(app):
        if opt.get("public") or path.startswith("/schema"):
            continue
        allowed = POLICY[opt["policy"]]
        url = _concrete(path)
        missing = await client.request(method, url)
        assert missing.status_code == 401, (method, path)
        assert missing.json()["code"] == "missing_api_key"
        bogus = await client.request(
            method, url, headers={"Authorization": "Bearer mtm_000000000000_" + "x" * 32}
        )
        assert bogus.status_code == 401, (method, path)
        for role in Role:
            resp = await client.request(method, url, headers=keys.headers(role.value), json={})
            if role in allowed:
                assert resp.status_code not in (401, 403), (method, path, role, resp.text)
            else:
                assert resp.status_code == 403, (method, path, role, resp.status_code)
                assert resp.json()["code"] == "forbidden"
            checked += 1
    assert checked >= 5 * 6


@pytest.mark.parametrize("path", ["/health", "/ready", "/schema/openapi.json"])
async def test_public_routes_need_no_key(client: Any, path: str) -> None:
    resp = await client.get(path)
    assert resp.status_code == 200


async def test_revoked_key_stops_working(client: Any, keys: Keys) -> None:
    created = await client.post(
        "/v1/api-keys", json={"role": "biller"}, headers=keys.headers("admin")
    )
    assert created.status_code == 201
    new = created.json()
    me = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {new['key']}"})
    assert me.json()["role"] == "biller"
    revoked = await client.delete(f"/v1/api-keys/{new['prefix']}", headers=keys.headers("admin"))
    assert revoked.status_code == 204
    after = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {new['key']}"})
    assert after.status_code == 401
    other = await client.delete(
        f"/v1/api-keys/{new['prefix']}", headers=keys.headers("admin", other=True)
    )
    assert other.status_code == 404


async def test_keys_are_stored_only_as_hashes(db: Any, keys: Keys) -> None:
    from sqlalchemy import text

    async with db.transaction() as (conn, _t):
        rows = (await conn.execute(text("SELECT prefix, key_hash FROM core.api_keys"))).all()
    stored = {r.key_hash for r in rows} | {r.prefix for r in rows}
    for key in keys.by_role.values():
        assert key not in stored
        assert key.split("_")[1] in stored
