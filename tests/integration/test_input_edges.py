"""Inputs that used to answer 500 or hang: each now answers a 4xx a person can act on, and the
task row is never left in an unknown state (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from orchestrator.app import build_state, create_app
from orchestrator.db import session_scope
from orchestrator.demo.devstack.processes import free_port
from orchestrator.models import AuditEvent, Task, utcnow

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


def task_count(stack: Any) -> int:
    with session_scope(stack.db.engine) as session:
        return int(session.exec(select(func.count()).select_from(Task)).one())


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@BOTH
async def test_integers_beyond_their_range_answer_422(api_only: Any) -> None:
    for query in ("offset=9223372036854775808", "offset=-1", "limit=100000000000000000000"):
        r = await api_only.api.get(f"/api/tasks?{query}", headers=api_only.auth("riley"))
        assert r.status_code == 422, (query, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await api_only.api.get("/api/cost?weeks=99999999999999999999", headers=api_only.auth("ada"))
    assert r.status_code == 422 and "weeks" in r.json()["detail"]
    spec = api_only.app.openapi()["paths"]["/api/tasks"]["get"]["parameters"]
    offset = next(p for p in spec if p["name"] == "offset")["schema"]
    assert offset["maximum"] == 1_000_000_000


@BOTH
async def test_deeply_nested_data_is_refused_before_a_task_is_written(api_only: Any) -> None:
    before = task_count(api_only)
    body = {"workflow": "summary", "input": "hello", "data": nested(400)}
    r = await api_only.api.post("/api/tasks", json=body, headers=api_only.auth("riley"))
    assert r.status_code == 422, r.text
    assert "32 levels" in r.json()["detail"] and "data" in r.json()["detail"]
    # Deeper than the JSON parser's own stack: a 400, not a 500.
    raw = '{"workflow": "summary", "input": "x", "data": ' + "[" * 20000 + "]" * 20000 + "}"
    r = await api_only.api.post(
        "/api/tasks", content=raw, headers={**api_only.auth("riley"), "Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422), r.text
    assert task_count(api_only) == before
    ok = await api_only.api.post(
        "/api/tasks",
        json={"workflow": "summary", "input": "hello", "data": nested(32)},
        headers=api_only.auth("riley"),
    )
    assert ok.status_code == 202, ok.text
    assert (
        "32 levels"
        in api_only.app.openapi()["components"]["schemas"]["TaskCreate"]["properties"]["data"]["description"]
    )


@BOTH
async def test_a_nul_character_anywhere_answers_422(api_only: Any) -> None:
    riley, ada = api_only.auth("riley"), api_only.auth("ada")
    before = task_count(api_only)
    attempts = [
        ("POST", "/api/tasks", {"json": {"workflow": "summary", "input": "a\x00b"}}, riley),
        ("POST", "/api/tasks", {"json": {"workflow": "summary", "input": "x", "data": {"k\x00": 1}}}, riley),
        ("GET", "/api/tasks/tsk_%00abc", {}, riley),
        ("POST", "/api/tasks/tsk_%00abc/cancel", {}, riley),
        ("GET", "/api/tasks?workflow=sum%00mary", {}, riley),
        ("POST", "/api/checkpoints/cp_x/comments", {"json": {"body": "hi\x00"}}, ada),
        (
            "POST",
            "/api/checkpoints/cp_x/decision",
            {"json": {"decision": "reject", "comment": "no\x00"}},
            ada,
        ),
        (
            "POST",
            "/api/checkpoints/cp_x/reassign",
            {"json": {"assignee_role": "admin", "comment": "\x00"}},
            ada,
        ),
        ("POST", "/api/switches", {"json": {"scope": "tenant", "active": True, "reason": "r\x00"}}, ada),
    ]
    for method, url, kw, headers in attempts:
        r = await api_only.api.request(method, url, headers=headers, **kw)
        assert r.status_code == 422, (method, url, r.status_code, r.text)
        assert "NUL" in r.json()["detail"], r.text
    assert task_count(api_only) == before
    # The sign-in form (a page): an HTML answer, still 422.
    r = await api_only.api.post("/login", data={"email": "a\x00@example.com", "password": "x"})
    assert r.status_code == 422 and "NUL" in r.text and r.headers["content-type"].startswith("text/html")
    # A backslash followed by "u0000" is ordinary text, not a NUL.
    r = await api_only.api.post(
        "/api/tasks",
        content=json.dumps({"workflow": "summary", "input": "C:\\u0000"}),
        headers={**riley, "Content-Type": "application/json"},
    )
    assert r.status_code == 202, r.text


async def test_405_names_the_allowed_methods(api_only: Any) -> None:
    r = await api_only.api.delete("/api/tasks", headers=api_only.auth("riley"))
    assert r.status_code == 405
    # Starlette names the methods of the first route the path matched (here POST /api/tasks).
    assert r.headers["allow"] and set(r.headers["allow"].replace(" ", "").split(",")) <= {"GET", "POST"}


class _BrokenClient:
    """A Temporal client whose start fails with a bug, not an outage."""

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("a bug while starting")


async def test_a_start_that_fails_unexpectedly_leaves_the_task_failed(api_only: Any) -> None:
    settings = api_only.settings
    state = build_state(settings, engine=api_only.db.engine, temporal=_BrokenClient())
    app = create_app(settings, state=state)
    # raise_app_exceptions (the default): the error must be answered inside the app, not go up to
    # the server, which would close the keep-alive connection after every 500.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        key = {"Idempotency-Key": f"broken-{settings.task_queue}"}
        body = {"workflow": "summary", "input": "hello"}
        r = await api.post("/api/tasks", json=body, headers={**api_only.auth("riley"), **key})
        assert r.status_code == 500 and "reference" in r.json()
        with session_scope(api_only.db.engine) as session:
            task = session.exec(select(Task).where(Task.idempotency_key == key["Idempotency-Key"])).one()
            assert task.status == "failed" and "could not start the workflow" in (task.error or "")


@BOTH
async def test_a_task_temporal_never_received_starts_on_the_idempotent_retry(api_only: Any) -> None:
    body = {"workflow": "summary", "input": "started after the outage"}
    headers = {**api_only.auth("riley"), "Idempotency-Key": f"outage-{api_only.settings.task_queue}"}
    down = api_only.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    app = create_app(down, state=build_state(down, engine=api_only.db.engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        first = await api.post("/api/tasks", json=body, headers=headers)
    assert first.status_code == 503 and "same Idempotency-Key" in first.json()["detail"]
    task_id = first.json()["detail"].split()[1]
    failed = (await api_only.api.get(f"/api/tasks/{task_id}", headers=api_only.auth("riley"))).json()
    assert failed["status"] == "failed"

    again = await api_only.api.post("/api/tasks", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == task_id
    assert again.json()["status"] == "queued"
    described = await api_only.client.get_workflow_handle(f"task-{task_id}").describe()
    assert described.id == f"task-{task_id}"
    with session_scope(api_only.db.engine) as session:
        actions = session.exec(
            select(AuditEvent.action).where(AuditEvent.task_id == task_id).order_by(AuditEvent.seq)
        ).all()
    assert actions == ["task.submitted", "task.start_failed", "task.restarted"]
    # A task that did run and failed is not started again by a retry.
    third = await api_only.api.post("/api/tasks", json=body, headers=headers)
    assert third.status_code == 200 and third.json()["status"] == "queued"


async def test_the_openapi_declares_the_problem_answers(api_only: Any) -> None:
    spec = api_only.app.openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status in ("400", "401", "403", "404", "409", "413", "422"):
                content = op["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_nul_in_a_reassign_or_decision_comment_leaves_the_checkpoint_decidable(stack: Any) -> None:
    """The case that hung for 166 s and then stranded the task: refused at once, nothing moves,
    and the approver the inbox names can still decide."""
    order = stack.make_order("2000.00")
    task = await stack.submit(f"Refund 300 EUR on order {order}, the item was damaged.")
    cp = await stack.open_checkpoint(task["id"])
    url = f"/api/checkpoints/{cp['id']}"
    r = await stack.api.post(
        f"{url}/reassign", json={"assignee_role": "admin", "comment": "bad\x00"}, headers=stack.auth("ada")
    )
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = await stack.api.post(
        f"{url}/decision", json={"decision": "approve", "comment": "ok\x00"}, headers=stack.auth("avery")
    )
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert (await stack.decide(cp["id"], "approve", comment="fine")).status_code == 200
    assert (await stack.wait(task["id"], {"completed", "failed"}))["status"] == "completed"


@BOTH
async def test_cancel_ends_a_task_whose_workflow_never_started(api_only: Any) -> None:
    """A row left `queued` with no workflow (its submitting process died before the start) no
    longer waits for good: cancelling it ends it. A fresh one may still be starting: left alone."""

    def queued(age: timedelta) -> str:
        task = Task(
            tenant_id="acme",
            requester_id=api_only.db.user_ids["riley"],
            workflow_name="summary",
            workflow_version="1",
            input_text="never started",
            definition_json="{}",
            created_at=utcnow() - age,
        )
        with session_scope(api_only.db.engine) as session:
            session.add(task)
        return task.id

    old, fresh = queued(timedelta(minutes=10)), queued(timedelta(0))
    r = await api_only.api.post(f"/api/tasks/{old}/cancel", headers=api_only.auth("riley"))
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    again = await api_only.api.post(f"/api/tasks/{old}/cancel", headers=api_only.auth("riley"))
    assert again.status_code == 409
    r = await api_only.api.post(f"/api/tasks/{fresh}/cancel", headers=api_only.auth("riley"))
    assert r.status_code == 202 and r.json()["status"] == "queued"
