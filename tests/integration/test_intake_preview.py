"""Intake picks a workflow when the requester names none; preview shows a task before it starts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.models import Task


def count_tasks(stack: Any) -> int:
    with session_scope(stack.db.engine) as session:
        return int(session.exec(select(func.count()).select_from(Task)).one())


async def test_submit_without_a_workflow_lets_intake_pick(api_only: Any) -> None:
    r = await api_only.api.post(
        "/api/tasks",
        json={"input": "The customer on order ORD-1001 wants their money back, the lamp arrived broken."},
        headers=api_only.auth("riley"),
    )
    assert r.status_code == 202, r.text
    assert r.json()["workflow"].startswith("refund_request@")


async def test_unplaceable_request_offers_three_workflows(api_only: Any) -> None:
    before = count_tasks(api_only)
    r = await api_only.api.post(
        "/api/tasks", json={"input": "What's the weather in Paris tomorrow?"}, headers=api_only.auth("riley")
    )
    assert r.status_code == 422
    body = r.json()
    assert body["title"] == "Choose a workflow" and len(body["options"]) == 3
    assert all("workflow" in o and 0 <= o["confidence"] <= 1 for o in body["options"])
    assert count_tasks(api_only) == before


async def test_preview_of_a_refund(api_only: Any) -> None:
    before = count_tasks(api_only)
    r = await api_only.api.post(
        "/api/tasks/preview",
        json={"workflow": "refund_request@1", "input": "Refund 300 EUR on order ORD-1002."},
        headers=api_only.auth("riley"),
    )
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["workflow"] == "refund_request@1" and p["intake"] is None
    [step] = p["steps"]
    tools = {t["name"]: t for t in step["tools"]}
    assert tools["lookup_order"]["likely"] == "allow"
    assert tools["issue_refund"]["likely"] == "depends on the arguments"
    assert "refund-needs-approval" in tools["issue_refund"]["rules"]
    assert any(c["kind"] == "tool_approval" and c["tool"] == "issue_refund" for c in p["checkpoints"])
    budget = p["budget"]
    assert Decimal(budget["worst_case_usd"]) > Decimal(budget["likely_usd"]) > 0
    assert count_tasks(api_only) == before  # a preview writes nothing


async def test_preview_without_a_workflow_shows_the_intake(api_only: Any) -> None:
    r = await api_only.api.post(
        "/api/tasks/preview",
        json={
            "input": "Please summarise the attached board memo in five bullet points for the leadership team."
        },
        headers=api_only.auth("riley"),
    )
    assert r.status_code == 200, r.text
    intake = r.json()["intake"]
    assert intake["picked"].startswith("summary@") and len(intake["options"]) == 3
    assert r.json()["workflow"] == intake["picked"]


async def test_preview_errors(api_only: Any) -> None:
    r = await api_only.api.post(
        "/api/tasks/preview", json={"workflow": "nope", "input": "x"}, headers=api_only.auth("riley")
    )
    assert r.status_code == 422 and "unknown workflow" in r.json()["detail"]
    r = await api_only.api.post("/api/tasks/preview", json={"workflow": "summary", "input": "x"})
    assert r.status_code == 401
