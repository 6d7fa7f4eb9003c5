"""Budgets and kill switches as a running task meets them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import RefundLedger


def ledger(stack: Any, order_id: str) -> list[RefundLedger]:
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(RefundLedger).where(RefundLedger.order_id == order_id)))


async def flip(stack: Any, who: str, **body: Any) -> None:
    r = await stack.api.post("/api/switches", json=body, headers=stack.auth(who))
    assert r.status_code in (200, 201), r.text


@pytest.fixture
async def switches_off(stack: Any) -> AsyncIterator[Any]:
    """Whatever a test turns on is turned off again (the database is shared by the session)."""
    yield stack
    for scope, subject in [("agent", "refund_agent"), ("tool", "issue_refund"), ("tenant", "")]:
        await flip(stack, "ada", scope=scope, subject=subject, active=False)


async def test_task_budget_breach_waits_for_a_raise_then_completes(stack: Any, record_history: Any) -> None:
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}.", budget_usd="0.021")
    view = await stack.wait(task["id"], {"waiting"})
    cp = view["checkpoints"][0]
    assert cp["kind"] == "budget_raise" and cp["assignee_role"] == "admin"
    assert "task budget exceeded" in cp["reason"] and "limit $0.021" in cp["reason"]
    assert Decimal(cp["args"]["new_limit_usd"]) == Decimal("0.042")
    assert view["model_calls"] == []  # nothing was spent past the budget

    assert (await stack.decide(cp["id"], "approve")).status_code == 403  # approvers don't raise budgets
    r = await stack.decide(cp["id"], "approve", who="ada")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    assert Decimal(done["cost"]["total_usd"]) <= Decimal("0.042")
    assert len(ledger(stack, order)) == 1
    await record_history(task["id"], "budget_raised")


async def test_budget_raise_with_edits_and_refused_edits(stack: Any) -> None:
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}.", budget_usd="0.021")
    cp = (await stack.wait(task["id"], {"waiting"}))["checkpoints"][0]
    bad = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={"decision": "approve_with_edits", "edited_args": {"new_limit_usd": "0.001"}},
        headers=stack.auth("ada"),
    )
    assert bad.status_code == 422 and "above the current limit" in bad.json()["detail"]
    ok = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={"decision": "approve_with_edits", "edited_args": {"new_limit_usd": "0.5"}},
        headers=stack.auth("ada"),
    )
    assert ok.status_code == 200, ok.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed"
    budgets = (await stack.api.get("/api/budgets", headers=stack.auth("ada"))).json()
    assert "0.5" in str(budgets)


async def test_budget_raise_rejected_fails_the_task_naming_the_budget(stack: Any) -> None:
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}.", budget_usd="0.021")
    cp = (await stack.wait(task["id"], {"waiting"}))["checkpoints"][0]
    assert (await stack.decide(cp["id"], "reject", who="ada", comment="not worth it")).status_code == 200
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "failed"
    assert "task budget exceeded" in done["error"] and "not approved" in done["error"]
    assert ledger(stack, order) == []


async def test_submit_budget_above_the_tenant_maximum_is_refused(stack: Any) -> None:
    r = await stack.api.post(
        "/api/tasks",
        json={"workflow": "summary", "input": "x", "budget_usd": "9999"},
        headers=stack.auth("riley"),
    )
    assert r.status_code == 422 and "maximum per task" in r.json()["detail"]


async def test_tenant_month_budget_stops_the_task(stack: Any) -> None:
    gina = stack.auth("gina")
    r = await stack.api.put(
        "/api/budgets/tenant_month", json={"limit_usd": "0.000001", "on_breach": "stop"}, headers=gina
    )
    assert r.status_code == 200, r.text
    try:
        task = await stack.submit(
            "Summarise: budgets are enforced before money is spent.", who="gina", workflow="summary"
        )
        done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, who="gina")
        assert done["status"] == "failed"
        assert "month" in done["error"] and "limit $0.000001" in done["error"]
        assert done["model_calls"] == []
    finally:
        r = await stack.api.put(
            "/api/budgets/tenant_month", json={"limit_usd": "100", "on_breach": "stop"}, headers=gina
        )
        assert r.status_code == 200


async def test_agent_stop_switch_stops_new_work(switches_off: Any) -> None:
    stack = switches_off
    await flip(
        stack, "ada", scope="agent", subject="refund_agent", active=True, mode="stop", reason="incident 42"
    )
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}.")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert (
        done["status"] == "failed" and "kill switch (agent refund_agent, stop): incident 42" in done["error"]
    )
    assert done["model_calls"] == [] and ledger(stack, order) == []
    # another tenant is not affected
    other = stack.make_order("80.00", tenant="globex")
    task = await stack.submit(f"Refund 30 EUR on order {other}.", who="gina")
    assert (await stack.wait(task["id"], {"completed", "failed"}, who="gina"))["status"] == "completed"


async def test_tool_stop_switch_denies_the_tool_and_records_it(switches_off: Any) -> None:
    stack = switches_off
    await flip(
        stack, "ada", scope="tool", subject="issue_refund", active=True, mode="stop", reason="fraud check"
    )
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}.")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    refund = next(t for t in done["tool_calls"] if t["tool"] == "issue_refund")
    assert refund["effect"] == "deny" and "fraud check" in refund["reason"]
    assert ledger(stack, order) == []


async def test_pause_switch_holds_the_task_until_lifted(switches_off: Any, record_history: Any) -> None:
    stack = switches_off
    await flip(stack, "ada", scope="tenant", active=True, mode="pause", reason="quarter close")
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}.")
    waiting = await stack.wait(task["id"], {"waiting"})
    assert waiting["checkpoints"] == [] and waiting["model_calls"] == []
    await asyncio.sleep(1)
    assert (await stack.task(task["id"]))["status"] == "waiting"
    await flip(stack, "ada", scope="tenant", active=False)
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, timeout=30)
    assert done["status"] == "completed", done["error"]
    assert len(ledger(stack, order)) == 1
    await record_history(task["id"], "paused_by_switch")
