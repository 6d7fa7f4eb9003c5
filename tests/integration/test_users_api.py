"""/api/users with bearer tokens against a real database (SQLite and PostgreSQL).

A minimal app (the users router alone) on the seeded database; each test gets its own tenant, so
the roles changed here touch no other test's people.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from repo_paths import SHIPPED_POLICIES
from sqlmodel import col, select

from orchestrator.api import errors
from orchestrator.api.routes import users as user_routes
from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_tenant, ensure_token, ensure_user
from orchestrator.models import AuditEvent
from orchestrator.policy.engine import PolicyEngine

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


@dataclass
class Api:
    http: httpx.AsyncClient
    tenant: str
    tokens: dict[str, str]
    ids: dict[str, str]
    engine: Any

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def put(self, who: str, user: str, role: str) -> httpx.Response:
        return await self.http.put(
            f"/api/users/{self.ids.get(user, user)}/roles/{role}", headers=self.auth(who)
        )

    async def delete(self, who: str, user: str, role: str) -> httpx.Response:
        return await self.http.delete(
            f"/api/users/{self.ids.get(user, user)}/roles/{role}", headers=self.auth(who)
        )


@pytest.fixture
async def api(db: Any) -> AsyncIterator[Api]:
    tenant = f"uapi{secrets.token_hex(4)}"
    tokens, ids = {"gina": db.tokens["gina"]}, {"gina": db.user_ids["gina"]}
    with session_scope(db.engine) as session:
        ensure_tenant(session, tenant, "users API test")
        for name, roles in [("boss", ["admin"]), ("rita", ["requester"]), ("abe", ["approver", "requester"])]:
            user = ensure_user(session, tenant, f"{name}@{tenant}.example", name.title(), roles)
            session.flush()
            tokens[name] = ensure_token(session, user, tenant)
            ids[name] = user.id
    app = FastAPI()
    errors.install(app)
    app.include_router(user_routes.router)
    app.state.frontdesk = SimpleNamespace(engine=db.engine, policy=PolicyEngine(SHIPPED_POLICIES))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as http:
        yield Api(http, tenant, tokens, ids, db.engine)


@BOTH
async def test_an_admin_lists_the_tenants_people_with_their_roles_here(api: Api) -> None:
    r = await api.http.get("/api/users", headers=api.auth("boss"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tenant_id"] == api.tenant
    assert body["roles"] == ["requester", "approver", "developer", "admin", "auditor"]
    assert [(p["name"], p["roles"]) for p in body["items"]] == [
        ("Abe", ["approver", "requester"]),
        ("Boss", ["admin"]),
        ("Rita", ["requester"]),
    ]
    assert body["items"][0] == {
        "id": api.ids["abe"], "name": "Abe", "email": f"abe@{api.tenant}.example", "roles": ["approver", "requester"],
    }  # fmt: skip


@BOTH
async def test_grant_and_revoke_apply_to_the_persons_token_at_once(api: Api) -> None:
    assert (await api.http.get("/api/users", headers=api.auth("rita"))).status_code == 403
    r = await api.put("boss", "rita", "admin")
    assert r.status_code == 200 and r.json()["roles"] == ["admin", "requester"]
    assert (await api.http.get("/api/users", headers=api.auth("rita"))).status_code == 200  # same token
    again = await api.put("boss", "rita", "admin")  # already held: unchanged, nothing recorded
    assert again.status_code == 200 and again.json()["roles"] == ["admin", "requester"]
    r = await api.delete("boss", "rita", "admin")
    assert r.status_code == 200 and r.json()["roles"] == ["requester"]
    assert (await api.http.get("/api/users", headers=api.auth("rita"))).status_code == 403
    with session_scope(api.engine) as s:
        events = s.exec(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.data_json)
            .where(AuditEvent.tenant_id == api.tenant, col(AuditEvent.action).startswith("user."))
            .order_by(col(AuditEvent.seq))
        ).all()
    data = f'{{"role": "admin", "user_id": "{api.ids["rita"]}"}}'
    assert events == [
        ("user.role_granted", api.ids["boss"], data),
        ("user.role_revoked", api.ids["boss"], data),
    ]


@BOTH
@pytest.mark.parametrize(
    "who, method, user, role, status, detail",
    [
        ("rita", "put", "rita", "admin", 403, "user:write"),
        ("abe", "delete", "rita", "requester", 403, "user:write"),
        ("boss", "delete", "boss", "admin", 409, "cannot revoke your own admin role"),
        ("boss", "delete", "rita", "requester", 409, "only role in this tenant"),
        ("boss", "delete", "abe", "developer", 409, "does not hold the developer role"),
        ("boss", "put", "rita", "platform_admin", 422, "cannot be granted here"),
        ("boss", "put", "gina", "requester", 404, "in this tenant"),  # a member of globex only
        ("boss", "put", "usr_nobody", "requester", 404, "in this tenant"),
        ("gina", "put", "rita", "admin", 404, "in this tenant"),  # globex's admin: not this tenant's
    ],
)
async def test_refusals(
    api: Api, who: str, method: str, user: str, role: str, status: int, detail: str
) -> None:
    before = (await api.http.get("/api/users", headers=api.auth("boss"))).json()
    r = await getattr(api, method)(who, user, role)
    assert r.status_code == status and detail in r.json()["detail"], r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await api.http.get("/api/users", headers=api.auth("boss"))).json() == before


async def test_no_token_is_401(api: Api) -> None:
    assert (await api.http.get("/api/users")).status_code == 401
