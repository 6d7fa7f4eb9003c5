"""Cross-tenant replay of every id-taking route, on SQLite and PostgreSQL (reliability/security.py).

Two tenants get the same real objects through the product's own routes (tasks run by the worker
up to their checkpoints, a task with an attachment sent through the web form, a comment, a budget,
a kill switch, people of every role with tokens and web sessions, and a policy rule of tenant A's
own). Every route of the app's route table whose path takes an id is replayed with tenant A's ids
by every person of tenant B: none may succeed, none may show A's data, A must be unchanged. The
same requests on B's own objects must go through, so the refusals are the tenant check's.

A new id-taking route fails `test_every_id_taking_route_has_a_fixture` until the sweep has a
fixture for it.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import SeededDb, running_stack, stack_settings
from repo_paths import REPO_ROOT

from orchestrator.app import build_state, create_app


@pytest.fixture
def security(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from reliability import security

    return security


def test_every_id_taking_route_has_a_fixture(security: ModuleType, sqlite_db: SeededDb, tmp_path: Path) -> None:
    settings = stack_settings(sqlite_db, "http://127.0.0.1:9", tmp_path)
    app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine))
    routes = security.id_routes(app)
    missing = [r for r in routes if r not in security.ID_ROUTES and r not in security.NEUTRAL_ROUTES]
    assert not missing, f"id-taking routes with no cross-tenant fixture in reliability/security.py: {missing}"
    assert len(routes) >= 20  # the API's and the pages' (the table is read, not hand-kept)


@pytest.mark.router
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_no_request_of_tenant_b_reaches_tenant_a(
    security: ModuleType, db: SeededDb, temporal_env: Any, router_url: str, demo_model_url: str, tmp_path: Path
) -> None:
    a_id, b_id = f"xa{secrets.token_hex(3)}", f"xb{secrets.token_hex(3)}"
    a_marker = security.new_marker()
    rule = f"{a_marker}-own-rule"
    policies = security.policies_with_rule(tmp_path / "policies", a_id, rule)
    async with running_stack(
        db, temporal_env.client, router_url, demo_model_url, tmp_path, policies_dir=policies
    ) as stack:
        a = security.make_tenant(db.engine, a_id, a_marker)
        b = security.make_tenant(db.engine, b_id, security.new_marker())
        transport = httpx.ASGITransport(app=stack.app)
        async with security.new_client("https://frontdesk", transport) as http:
            await asyncio.gather(security.populate(http, a), security.populate(http, b))
            r = await security.cross_tenant(stack.app, http, db.engine, a, b, temporal=temporal_env.client, a_rule=rule)

    print({k: v for k, v in r.items() if k not in ("failures", "per_route")})
    assert not r["uncovered"], r
    assert r["requests"] >= 300 and r["succeeded"] == 0, r["failures"]
    assert r["statuses_by_person"]["all"] == {"404": r["requests"] // len(r["statuses_by_person"])}, r
    assert r["body_id_succeeded"] == 0, r["failures"]
    assert r["failure_count"] == 0, "\n".join(r["failures"])
    assert r["a_rule_seen_by_a"], "tenant A's own rule is not shown to A: the leak check would not see it"
    assert not r["tenant_a_changed"] and not r["workflows_moved"] and r["tenant_a_still_works"], r
    assert r["workflows_checked"] == 3
    assert not r["control_failures"], "\n".join(r["control_failures"])
