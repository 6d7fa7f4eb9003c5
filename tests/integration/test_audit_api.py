"""GET /api/audit and the Audit page, on SQLite and PostgreSQL, and the read-only `auditor` role.

Events are written by the product's own `audit.record` in acme and globex under a marker actor, so
the filters can be checked exactly while other tests' events sit in the same tenants. Nothing here
needs Temporal: every route the auditor is refused answers before any workflow is touched.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SeededDb, stack_settings
from fastapi.routing import iter_route_contexts

from orchestrator import audit
from orchestrator.app import build_state, create_app
from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_token, ensure_user
from orchestrator.models import Checkpoint, ModelCall, Task, utcnow

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
PASSWORD = "auditor password 1"


@dataclass
class World:
    app: Any
    http: httpx.AsyncClient
    db: SeededDb
    marker: str
    auditor: str  # bearer token
    auditor_email: str
    midway: str  # ISO time between the first 10 acme events and the other 15
    task_ids: list[str]

    def auth(self, who: str) -> dict[str, str]:
        token = self.auditor if who == "auditor" else self.db.tokens[who]
        return {"Authorization": f"Bearer {token}"}

    async def get(self, who: str, **params: Any) -> httpx.Response:
        return await self.http.get("/api/audit", params=params, headers=self.auth(who))


def _record(db: SeededDb, tenant: str, marker: str, n: int, first: int, tasks: list[str]) -> None:
    with session_scope(db.engine) as session:
        for i in range(first, first + n):
            audit.record(
                session,
                tenant_id=tenant,
                actor=f"probe-{marker}",
                action="probe.alpha" if i % 2 else "probe.beta",
                subject=f"thing-{i}",
                reason=f'=HYPERLINK("x") {i}' if i == 3 else f"reason {i}",
                task_id=tasks[i % 3],
                data={"i": i, "tenant": tenant},
            )


@pytest.fixture
async def world(db: SeededDb, tmp_path: Path) -> AsyncIterator[World]:
    marker = secrets.token_hex(4)
    tasks = [f"tsk_{marker}_{k}" for k in range(3)]
    email = f"audrey-{marker}@acme.example"
    with session_scope(db.engine) as session:
        user = ensure_user(session, "acme", email, "Audrey Auditor", ["auditor"], password=PASSWORD)
        token = ensure_token(session, user, "acme")
    _record(db, "acme", marker, 10, 0, tasks)
    midway = utcnow().isoformat()
    _record(db, "acme", marker, 15, 10, tasks)
    _record(db, "globex", marker, 5, 100, tasks)  # same actor and task ids, another tenant
    settings = stack_settings(db, "http://127.0.0.1:9", tmp_path)
    app = create_app(settings, state=build_state(settings, engine=db.engine))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://frontdesk"
    ) as http:
        yield World(app, http, db, marker, token, email, midway, tasks)


async def _all_pages(w: World, who: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    before = None
    for _ in range(50):
        r = await w.get(who, **params, **({"before": before} if before else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        before = body["next_before"]
        if before is None:
            return items
    raise AssertionError("paging did not end")


@BOTH
async def test_filters_and_keyset_pages(world: World) -> None:
    w, actor = world, f"probe-{world.marker}"
    first = await w.get("ada", actor=actor, limit=10)
    body = first.json()
    assert first.status_code == 200 and body["tenant_id"] == "acme"
    seqs = [e["seq"] for e in body["items"]]
    assert len(seqs) == 10 and seqs == sorted(seqs, reverse=True) and body["next_before"] == seqs[-1]
    everything = await _all_pages(w, "ada", actor=actor, limit=7)
    assert [e["data"]["i"] for e in everything] == list(range(24, -1, -1))  # newest first, none twice
    assert {e["data"]["tenant"] for e in everything} == {"acme"}
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in everything)

    by_task = await _all_pages(w, "ada", task=w.task_ids[1])
    assert sorted(e["data"]["i"] for e in by_task) == [i for i in range(25) if i % 3 == 1]
    alpha = await _all_pages(w, "ada", actor=actor, action="probe.alpha")
    assert {e["data"]["i"] % 2 for e in alpha} == {1} and len(alpha) == 12
    prefix = await _all_pages(w, "ada", actor=actor, action="probe.*")
    assert len(prefix) == 25
    assert await _all_pages(w, "ada", actor=actor, action="probe") == []  # exact unless it ends in *
    later = await _all_pages(w, "ada", actor=actor, since=w.midway)
    assert sorted(e["data"]["i"] for e in later) == list(range(10, 25))
    earlier = await _all_pages(w, "ada", actor=actor, until=w.midway)
    assert sorted(e["data"]["i"] for e in earlier) == list(range(10))

    for params in ({"since": w.midway, "until": w.midway}, {"limit": 0}, {"limit": 501}, {"since": "nope"}):
        r = await w.get("ada", **params)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), (
            r.text
        )


@BOTH
async def test_exports_carry_every_matching_event(world: World) -> None:
    w, actor = world, f"probe-{world.marker}"
    page = {e["seq"]: e for e in await _all_pages(w, "ada", actor=actor)}
    r = await w.get("ada", actor=actor, format="jsonl", limit=1)  # an export ignores limit
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in r.headers["content-disposition"]
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert {e["seq"]: e for e in lines} == page and len(lines) == 25

    r = await w.get("ada", actor=actor, format="csv", action="probe.*")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 25 and list(rows[0]) == ["seq", "at", "actor", "action", "subject", "reason",
                                                 "task_id", "data", "prev_hash", "hash"]  # fmt: skip
    for row in rows:
        event = page[int(row["seq"])]
        assert row["hash"] == event["hash"] and json.loads(row["data"]) == event["data"]
    formula = next(row for row in rows if json.loads(row["data"])["i"] == 3)
    assert formula["reason"].startswith("'=")  # a spreadsheet shows it as text, never runs it

    r = await w.get("ada", actor=actor, format="csv", since=w.midway, until=w.midway)
    assert r.status_code == 422  # refused before the stream starts


@BOTH
async def test_another_tenants_events_never_appear(world: World) -> None:
    w, actor = world, f"probe-{world.marker}"
    acme = await _all_pages(w, "ada", actor=actor)
    globex = await _all_pages(w, "gina", actor=actor)
    assert len(acme) == 25 and len(globex) == 5
    assert {e["data"]["tenant"] for e in globex} == {"globex"}
    assert not {e["hash"] for e in acme} & {e["hash"] for e in globex}
    for who in ("ada", "auditor"):
        text = (await w.get(who, format="jsonl")).text + (
            await w.get(who, task=w.task_ids[0], format="csv")
        ).text
        assert '"tenant": "globex"' not in text and '"tenant":"globex"' not in text
        assert all(e["hash"] not in text for e in globex)
    for who in ("riley", "avery", "dev"):  # requester, approver, developer: no audit:read
        r = await w.get(who)
        assert r.status_code == 403, (who, r.text)


def _write_routes(app: Any) -> list[tuple[str, str]]:
    return sorted(
        {
            (method, str(route.path))
            for route in iter_route_contexts(app.routes)
            for method in route.methods or ()
            if method not in ("GET", "HEAD") and str(route.path).startswith("/api/")
        }
    )


def _objects(db: SeededDb) -> dict[str, str]:
    """A real task, checkpoint and model call of acme, so a refusal is the role's, not a 404."""
    with session_scope(db.engine) as session:
        task = Task(
            tenant_id="acme",
            requester_id=db.user_ids["riley"],
            workflow_name="refund_request",
            workflow_version="1",
            input_text="audit probe",
            definition_json="{}",
        )
        session.add(task)
        session.flush()
        cp = Checkpoint(
            id=f"cp_{secrets.token_hex(8)}",
            tenant_id="acme",
            task_id=task.id,
            requester_id=db.user_ids["riley"],
            step="handle_refund",
            tool="issue_refund",
            args_json="{}",
            args_digest="0" * 64,
            policy_version="pv",
            rule="probe",
        )
        call = ModelCall(
            tenant_id="acme",
            task_id=task.id,
            step="s",
            agent="a",
            turn=1,
            request_id=secrets.token_hex(8),
            attempt=1,
            tier="tier-slm",
            ok=True,
        )
        session.add_all([cp, call])
        session.flush()
        return {
            "task_id": task.id,
            "checkpoint_id": cp.id,
            "call_id": str(call.id),
            "user_id": db.user_ids["riley"],
            "role": "requester",
            "scope": "tenant_month",
        }


@BOTH
async def test_the_auditor_reads_everything_and_changes_nothing(world: World) -> None:
    w = world
    for path in ("/api/audit", "/api/tasks", "/api/cost", "/api/model-calls", "/api/budgets", "/api/switches",
                 "/api/switches/history", "/api/users", "/api/policies", "/api/workflows", "/api/checkpoints"):  # fmt: skip
        r = await w.http.get(path, headers=w.auth("auditor"))
        assert r.status_code == 200, (path, r.status_code, r.text)
    ids = _objects(w.db)
    task = await w.http.get(f"/api/tasks/{ids['task_id']}", headers=w.auth("auditor"))
    assert task.status_code == 200  # someone else's task: the whole tenant's are visible

    routes = _write_routes(w.app)
    assert len(routes) >= 12
    bodies: dict[str, Any] = {
        "/api/tasks": {"workflow": "refund_request@1", "input": "refund please"},
        "/api/tasks/preview": {"workflow": "refund_request@1", "input": "refund please"},
        "/api/switches": {"scope": "tenant", "active": True, "reason": "x"},
        "/api/budgets/{scope}": {"limit_usd": "1"},
        "/api/policies/explain": {"agent": "a", "tool": "t", "args": {}},
        "/api/checkpoints/{checkpoint_id}/decision": {"decision": "approve"},
        "/api/checkpoints/{checkpoint_id}/comments": {"body": "hello"},
        "/api/checkpoints/{checkpoint_id}/reassign": {"role": "admin"},
        "/api/model-calls/{call_id}/reconcile": {"cost_usd": "0.1"},
    }
    before = await _all_pages(w, "ada", limit=500)
    refused = []
    for method, template in routes:
        path = template.format(**ids)
        r = await w.http.request(method, path, json=bodies.get(template, {}), headers=w.auth("auditor"))
        refused.append((method, template, r.status_code))
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    after = await _all_pages(w, "ada", limit=500)
    assert len(after) == len(before)  # nothing was recorded: nothing happened
    print(refused)


@BOTH
async def test_audit_page_and_its_export(world: World) -> None:
    w = world
    page = await w.http.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = await w.http.post("/login", data={"email": w.auditor_email, "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 303, r.text[:300]
    r = await w.http.get("/audit", params={"actor": f"probe-{w.marker}"})
    assert r.status_code == 200, r.text[:500]
    assert 'href="/audit"' in r.text and "aria-current" in r.text  # in the navigation, as the current page
    assert r.text.count("<tr>") == 25 + 1 and "probe.alpha" in r.text and w.task_ids[0] in r.text
    assert "=HYPERLINK(&#34;x&#34;)" in r.text or "=HYPERLINK(&quot;x&quot;)" in r.text  # escaped
    assert "/tasks/new" not in r.text  # no way to submit: the auditor cannot
    export = await w.http.get("/audit/export", params={"format": "csv", "actor": f"probe-{w.marker}"})
    assert export.status_code == 200 and len(list(csv.DictReader(io.StringIO(export.text)))) == 25
    task_id = _objects(w.db)["task_id"]  # riley's, with an open checkpoint
    for path in (
        f"/tasks/{task_id}",
        "/tasks",
        "/cost",
        "/catalog",
        "/admin/budgets",
        "/admin/switches",
        "/admin/users",
        "/admin/policies",
    ):
        r = await w.http.get(path)
        assert r.status_code == 200, (path, r.status_code)
        forms = re.findall(r"<form\b[^>]*>", r.text)
        posts = [f for f in forms if 'method="post"' in f.lower()]
        actions = [re.sub(r'.*action="(?:https://frontdesk)?([^"]*)".*', r"\1", f) for f in posts]
        assert "/logout" in actions and set(actions) <= {"/logout", "/tenant"}, (
            path,
            actions,
        )  # nothing else
    paged = await w.http.get("/audit", params={"before": 2})
    assert paged.status_code == 200
    bad = await w.http.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "is not a time" in bad.text
    for who in ("riley",):
        r = await w.http.get("/api/audit", headers=w.auth(who))
        assert r.status_code == 403


async def test_out_of_range_times_and_seqs_are_refused(world: World) -> None:
    for params in (
        {"since": "0001-01-01T00:00:00+05:00"},
        {"until": "9999-12-31T23:59:59-05:00"},
        {"before": 2**31},
    ):
        r = await world.get("ada", **params)
        assert r.status_code == 422, (params, r.text)
    assert (await world.http.get("/audit", params={"since": "0001-01-01T00:00+05:00"})).status_code in (
        401,
        303,
        422,
    )
