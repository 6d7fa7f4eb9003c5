"""Bad input answers a clear 4xx and writes nothing half-way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from orchestrator.app import build_state, create_app
from orchestrator.db import session_scope
from orchestrator.demo.devstack.processes import free_port
from orchestrator.models import AuditEvent, Task


def task_count(stack: Any) -> int:
    with session_scope(stack.db.engine) as session:
        return int(session.exec(select(func.count()).select_from(Task)).one())


async def post_task(stack: Any, content: bytes | str, who: str = "riley", **headers: str) -> httpx.Response:
    return await stack.api.post(
        "/api/tasks",
        content=content,
        headers={**stack.auth(who), "Content-Type": "application/json", **headers},
    )


async def test_malformed_json(api_only: Any) -> None:
    before = task_count(api_only)
    r = await post_task(api_only, b'{"workflow": "summary", "input": ')
    assert r.status_code == 400
    body = r.json()
    assert body["title"] == "Malformed JSON" and "not valid JSON" in body["detail"]
    assert "Traceback" not in r.text
    assert task_count(api_only) == before


async def test_missing_and_extra_fields(api_only: Any) -> None:
    r = await api_only.api.post("/api/tasks", json={"workflow": "summary"}, headers=api_only.auth("riley"))
    assert r.status_code == 422 and "input: Field required" in r.json()["detail"]
    r = await api_only.api.post(
        "/api/tasks",
        json={"workflow": "summary", "input": "x", "priority": 9},
        headers=api_only.auth("riley"),
    )
    assert r.status_code == 422 and "priority" in r.json()["detail"]


async def test_unknown_workflow(api_only: Any) -> None:
    before = task_count(api_only)
    r = await api_only.api.post(
        "/api/tasks", json={"workflow": "teleport", "input": "beam me up"}, headers=api_only.auth("riley")
    )
    assert r.status_code == 422
    assert "unknown workflow 'teleport'" in r.json()["detail"] and "refund_request@1" in r.json()["detail"]
    r = await api_only.api.post(
        "/api/tasks", json={"workflow": "summary@9", "input": "x"}, headers=api_only.auth("riley")
    )
    assert r.status_code == 422
    assert task_count(api_only) == before


async def test_input_over_size_limit(api_only: Any) -> None:
    before = task_count(api_only)
    limit = api_only.settings.max_input_bytes
    big = '{"workflow": "summary", "input": "' + "a" * (limit + 10) + '"}'
    r = await post_task(api_only, big)
    assert r.status_code == 413
    assert str(limit) in r.json()["detail"]

    # Chunked upload without Content-Length is counted too.
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 1000 + 2):
            yield b"a" * 1000

    r = await api_only.api.post(
        "/api/tasks", content=chunks(), headers={**api_only.auth("riley"), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert task_count(api_only) == before


@pytest.mark.parametrize(
    "headers, detail",
    [
        ({}, "Missing bearer token"),
        ({"Authorization": "Bearer fd_nope"}, "invalid or revoked"),
        ({"Authorization": "Basic abc"}, "Bearer"),
    ],
)
async def test_missing_or_invalid_token(api_only: Any, headers: dict[str, str], detail: str) -> None:
    r = await api_only.api.get("/api/tasks", headers=headers)
    assert r.status_code == 401 and detail in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api_only.api.post("/api/tasks", json={"workflow": "summary", "input": "x"}, headers=headers)
    assert r.status_code == 401


async def test_role_without_permission_is_refused(api_only: Any) -> None:
    r = await api_only.api.post(
        "/api/tasks", json={"workflow": "summary", "input": "x"}, headers=api_only.auth("avery")
    )
    assert r.status_code == 403 and "task:submit" in r.json()["detail"]
    r = await api_only.api.get("/api/checkpoints", headers=api_only.auth("riley"))
    assert r.status_code == 403


async def test_other_tenants_ids_answer_404(stack: Any) -> None:
    order = stack.make_order("400.00")
    task = await stack.submit(f"Refund 300 EUR on order {order}.")
    cp = await stack.open_checkpoint(task["id"])
    gina = stack.auth("gina")  # admin + approver, but in tenant globex
    assert (await stack.api.get(f"/api/tasks/{task['id']}", headers=gina)).status_code == 404
    assert (await stack.api.post(f"/api/tasks/{task['id']}/cancel", headers=gina)).status_code == 404
    r = await stack.decide(cp["id"], "approve", who="gina")
    assert r.status_code == 404
    listed = (await stack.api.get("/api/tasks", headers=gina)).json()
    assert task["id"] not in [t["id"] for t in listed["items"]]
    assert (await stack.api.get("/api/checkpoints?status=open", headers=gina)).json()["items"] == []
    # another acme requester's view: riley's own list has it, the developer's has not
    assert task["id"] not in [
        t["id"] for t in (await stack.api.get("/api/tasks", headers=stack.auth("dev"))).json()["items"]
    ]
    assert (await stack.api.get(f"/api/tasks/{task['id']}", headers=stack.auth("dev"))).status_code == 404
    # the checkpoint is still open and decidable by the right person
    assert (await stack.decide(cp["id"], "reject")).status_code == 200


async def test_decisions_refused_with_clear_reasons(stack: Any) -> None:
    order = stack.make_order("400.00")
    task = await stack.submit(f"Refund 300 EUR on order {order}.")
    cp = await stack.open_checkpoint(task["id"])

    r = await stack.decide(cp["id"], "approve", who="riley")  # requester, no approver role
    assert r.status_code == 403
    r = await stack.decide(cp["id"], "maybe")
    assert r.status_code == 422
    assert (await stack.decide("cp_doesnotexist", "approve")).status_code == 404

    first, second = await asyncio.gather(
        stack.decide(cp["id"], "approve"), stack.decide(cp["id"], "reject", who="blake")
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.text, second.text)
    winner = first if first.status_code == 200 else second
    third = await stack.decide(cp["id"], "reject", who="blake")
    assert third.status_code == 409 and "already" in third.json()["detail"]

    done = await stack.wait(task["id"], {"completed", "rejected", "failed"})
    assert done["status"] == ("completed" if winner.json()["status"] == "approved" else "rejected")
    with session_scope(stack.db.engine) as session:
        decided = session.exec(
            select(AuditEvent).where(
                AuditEvent.task_id == task["id"], AuditEvent.action == "checkpoint.decided"
            )
        ).all()
    assert len(decided) == 1


async def test_requester_who_is_also_approver_cannot_decide_own(stack: Any, record_history: Any) -> None:
    # gina holds requester and approver in globex: four-eyes still refuses her own task.
    order = stack.make_order("300.00", tenant="globex")
    task = await stack.submit(f"Refund 150 EUR on order {order}.", who="gina")
    task_view = await stack.wait(task["id"], {"waiting"}, who="gina")
    cp = task_view["checkpoints"][0]
    r = await stack.decide(cp["id"], "approve", who="gina")
    assert r.status_code == 403 and "someone else" in r.json()["detail"]
    r = await stack.api.post(f"/api/tasks/{task['id']}/cancel", headers=stack.auth("gina"))
    assert r.status_code == 202
    done = await stack.wait(task["id"], {"cancelled"}, who="gina")
    assert done["checkpoints"][0]["status"] == "cancelled"
    await record_history(task["id"], "cancelled_at_checkpoint")
    r = await stack.api.post(f"/api/tasks/{task['id']}/cancel", headers=stack.auth("gina"))
    assert r.status_code == 409


async def test_idempotency_key_returns_same_task(stack: Any) -> None:
    body = {"workflow": "summary", "input": "Idempotent summary. Second sentence here."}
    headers = {**stack.auth("riley"), "Idempotency-Key": "req-42-" + stack.settings.task_queue}
    first = await stack.api.post("/api/tasks", json=body, headers=headers)
    again = await asyncio.gather(
        *[stack.api.post("/api/tasks", json=body, headers=headers) for _ in range(5)]
    )
    assert first.status_code == 202
    assert {r.status_code for r in again} == {200}
    assert {r.json()["id"] for r in again} == {first.json()["id"]}
    with session_scope(stack.db.engine) as session:
        n = session.exec(
            select(func.count()).select_from(Task).where(Task.idempotency_key == headers["Idempotency-Key"])
        ).one()
    assert n == 1
    workflows = [w async for w in stack.client.list_workflows(f"WorkflowId = 'task-{first.json()['id']}'")]
    assert len(workflows) == 1
    other = await stack.api.post("/api/tasks", json={**body, "input": "something else"}, headers=headers)
    assert other.status_code == 409 and "different request" in other.json()["detail"]


async def test_temporal_down_marks_task_failed_with_503(api_only: Any) -> None:
    settings = api_only.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    state = build_state(settings, engine=api_only.db.engine)
    app = create_app(settings, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        r = await api.post(
            "/api/tasks", json={"workflow": "summary", "input": "hello"}, headers=api_only.auth("riley")
        )
        assert r.status_code == 503
        assert "marked failed" in r.json()["detail"]
        listed = (await api.get("/api/tasks?limit=1", headers=api_only.auth("riley"))).json()["items"][0]
        assert listed["status"] == "failed"
