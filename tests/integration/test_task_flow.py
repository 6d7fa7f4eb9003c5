"""End to end through the real stack: API -> Temporal -> worker -> LiteLLM proxy -> demo model."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import yaml
from repo_paths import SHIPPED_POLICIES
from sqlmodel import select

from orchestrator.audit import verify_chain
from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import RefundLedger
from orchestrator.models import AuditEvent

PRICES = yaml.safe_load((SHIPPED_POLICIES / "prices.yaml").read_text())["models"]


def ledger_rows(stack, order_id: str) -> list[RefundLedger]:  # type: ignore[no-untyped-def]
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(RefundLedger).where(RefundLedger.order_id == order_id)))


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_refund_waits_for_approval_then_completes_with_router_cost(stack, record_history, db) -> None:  # type: ignore[no-untyped-def]
    order = stack.make_order("300.00")
    task = await stack.submit(
        f"Customer on order {order} asks for a refund of 150 EUR: the lamp arrived broken."
    )

    cp = await stack.open_checkpoint(task["id"])
    assert cp["tool"] == "issue_refund"
    assert Decimal(cp["args"]["amount"]) == Decimal("150")
    assert cp["args"]["order_id"] == order
    assert "approve" in cp["rule"]
    assert ledger_rows(stack, order) == []  # nothing ran before the decision

    r = await stack.decide(cp["id"], "approve", comment="photo checked")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"

    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    assert done["outcome"] == "resolved"
    assert done["output"]["action"] == "refunded"
    rows = ledger_rows(stack, order)
    assert len(rows) == 1 and rows[0].amount == Decimal("150.00")

    # Cost: every call was priced by the router (not estimated) and the task's total is their sum.
    calls = done["model_calls"]
    assert len(calls) == 3 and all(c["ok"] and not c["cost_estimated"] for c in calls)
    reported = sum(Decimal(c["cost_usd"]) for c in calls)
    assert Decimal(done["cost"]["total_usd"]) == reported

    # ...and agrees, to the cent, with the configured per-token prices of the tier that answered.
    def priced(c: dict) -> Decimal:  # type: ignore[type-arg]
        price = PRICES[c["model_group"] or c["tier"]]
        return (
            Decimal(str(price["input"])) * c["prompt_tokens"]
            + Decimal(str(price["output"])) * c["completion_tokens"]
        )

    expected = sum(priced(c) for c in calls)
    assert reported > 0
    assert abs(reported - expected) < Decimal("0.01")
    assert abs(reported - expected) < Decimal("0.000001")

    tools = [(t["tool"], t["effect"], t["status"]) for t in done["tool_calls"]]
    assert tools == [("lookup_order", "allow", "succeeded"), ("issue_refund", "approve", "succeeded")]

    with session_scope(stack.db.engine) as session:
        actions = [
            e.action
            for e in session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task["id"]).order_by(AuditEvent.seq)
            )
        ]
        ok, why = verify_chain(session, "acme")
    assert ok, why
    for action in [
        "task.submitted",
        "task.started",
        "model.call",
        "tool.allowed",
        "tool.ran",
        "tool.approval_required",
        "checkpoint.opened",
        "checkpoint.decided",
        "task.ended",
    ]:
        assert action in actions, (action, actions)
    assert actions.count("tool.ran") == 2
    if db.url.startswith("sqlite"):
        await record_history(task["id"], "refund_approved")


async def test_small_refund_runs_without_checkpoint(stack) -> None:  # type: ignore[no-untyped-def]
    order = stack.make_order("80.00")
    task = await stack.submit(f"Please refund 25 EUR on order {order}, one item was missing.")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    assert done["checkpoints"] == []
    assert [r.amount for r in ledger_rows(stack, order)] == [Decimal("25.00")]


async def test_reject_tells_agent_and_ends_rejected(stack, record_history) -> None:  # type: ignore[no-untyped-def]
    order = stack.make_order("500.00")
    task = await stack.submit(f"Refund 400 EUR on order {order}, customer changed their mind.")
    cp = await stack.open_checkpoint(task["id"])
    r = await stack.decide(cp["id"], "reject", comment="outside the return window")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "rejected"
    assert "outside the return window" in done["error"]
    assert done["output"]["action"] == "declined"  # the agent was told and answered accordingly
    assert ledger_rows(stack, order) == []
    refund_calls = [t for t in done["tool_calls"] if t["tool"] == "issue_refund"]
    assert [t["status"] for t in refund_calls] == ["rejected"]
    await record_history(task["id"], "refund_rejected")


async def test_refund_above_limit_is_denied_and_never_runs(stack) -> None:  # type: ignore[no-untyped-def]
    order = stack.make_order("5000.00")
    task = await stack.submit(f"Refund 2500 EUR on order {order}.")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed"
    assert done["output"]["action"] == "declined"
    denied = [t for t in done["tool_calls"] if t["tool"] == "issue_refund"]
    assert [t["effect"] for t in denied] == ["deny"] and denied[0]["rule"].startswith("refund-over-limit")
    assert ledger_rows(stack, order) == []


async def test_summary_workflow(stack, record_history) -> None:  # type: ignore[no-untyped-def]
    text = (
        "The quarterly review shows revenue up 12 percent. Support tickets fell by a third after the "
        "new help centre launched. Hiring stays frozen until March. Marketing asks for a bigger budget."
    )
    task = await stack.submit(text, workflow="summary")
    done = await stack.wait(task["id"], {"completed", "failed"})
    assert done["status"] == "completed", done["error"]
    assert done["output"]["summary"] and 1 <= len(done["output"]["key_points"]) <= 5
    assert [c["tier"] for c in done["model_calls"]] == ["tier-slm"]
    assert done["workflow"] == "summary@1"
    await record_history(task["id"], "summary")


async def test_decision_sent_the_moment_the_checkpoint_appears(stack) -> None:  # type: ignore[no-untyped-def]
    """The checkpoint row becomes visible before the workflow has processed the activity's
    completion; a decision arriving in that gap must still be accepted (found by the benchmark)."""
    from orchestrator.models import Checkpoint

    for _ in range(5):
        order = stack.make_order("300.00")
        task = await stack.submit(f"Refund 120 EUR on order {order}.")
        cp_id = None
        for _ in range(3000):
            with session_scope(stack.db.engine) as session:
                row = session.exec(select(Checkpoint).where(Checkpoint.task_id == task["id"])).first()
            if row is not None:
                cp_id = row.id
                break
            await asyncio.sleep(0.002)
        assert cp_id is not None
        r = await stack.decide(cp_id, "approve")
        assert r.status_code == 200, r.text
        done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
        assert done["status"] == "completed", done["error"]
