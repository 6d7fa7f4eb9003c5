"""The contract review sample end to end: clauses extracted on tier-open, risks judged on
tier-frontier, and legal's sign-off (approve: completed; reject: the task ends rejected)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.models import TaskStep

WORKFLOW = "contract_review@1"
ENDED = {"completed", "failed", "rejected", "cancelled"}
CONTRACT = """Review this supplier agreement before we sign it.

MASTER SERVICES AGREEMENT

This Master Services Agreement is made between Northwind Logistics GmbH (the "Supplier") and
Acme Retail Ltd (the "Customer"), effective 1 March 2027.

1. Services
The Supplier provides warehousing and last-mile delivery services as described in Schedule A.

2. Term and Termination
2.1 The Agreement runs for an initial term of 24 months and renews automatically for successive
12-month periods.
2.2 Either party may terminate the Agreement by giving six (6) months' prior written notice.

3. Fees and Payment
The Customer pays the fees monthly in advance. Invoices are payable net 90.

4. Liability
The Customer's liability under this Agreement shall be unlimited. The Supplier's liability is
limited to the fees paid in the previous 12 months.

5. Confidentiality
Each party keeps the terms of this Agreement confidential.

6. Governing Law
This Agreement is governed by the laws of Germany; the courts of Hamburg have exclusive jurisdiction.
"""


def steps(stack: Any, task_id: str) -> list[TaskStep]:
    with session_scope(stack.db.engine) as session:
        rows = session.exec(
            select(TaskStep).where(TaskStep.task_id == task_id).order_by(TaskStep.index)
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


async def review(stack: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit the contract and wait for legal's checkpoint: (task, checkpoint)."""
    task = await stack.submit(CONTRACT, workflow=WORKFLOW)
    cp = await stack.open_checkpoint(task["id"])
    assert (cp["kind"], cp["step"], cp["assignee_role"]) == ("output_review", "legal_signoff", "approver")
    assessment = cp["args"]["output"]
    assert assessment["risk_level"] == "high"
    reasons = {f["reason"] for f in assessment["flags"]}
    assert "Unlimited liability: exposure is not capped." in reasons
    assert "Automatic renewal: the contract renews unless cancelled." in reasons
    assert "Termination notice of 180 days (over 90 days)." in reasons
    assert assessment["recommendation"].startswith("Do not sign as drafted.")

    waiting = await stack.task(task["id"])
    assert [c["tier"] for c in waiting["model_calls"]] == ["tier-open", "tier-frontier"]
    extraction = {s["name"]: s for s in waiting["steps"]}["extract"]["output"]
    assert extraction["parties"] == ["Northwind Logistics GmbH", "Acme Retail Ltd"]
    assert [c["kind"] for c in extraction["clauses"]] == [
        "other", "termination", "termination", "payment", "liability", "confidentiality", "governing_law",
    ]  # fmt: skip
    return task, cp


async def test_legal_signs_off_and_the_review_completes(stack: Any) -> None:
    task, cp = await review(stack)
    r = await stack.decide(cp["id"], "approve", comment="signed off with a liability cap rider")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], ENDED)
    assert done["status"] == "completed", done["error"]
    assert done["outcome"] == "resolved"
    assert done["output"] == cp["args"]["output"]  # the assessment legal signed off
    assert done["tool_calls"] == []
    assert Decimal(done["cost"]["total_usd"]) == sum(Decimal(c["cost_usd"]) for c in done["model_calls"])
    assert [(s.name, s.kind, s.status, s.rung, s.tier) for s in steps(stack, task["id"])] == [
        ("extract", "agent", "completed", 1, "tier-open"),
        ("risks", "agent", "completed", 1, "tier-frontier"),
        ("legal_signoff", "checkpoint", "completed", None, None),
    ]


async def test_legal_rejects_and_the_task_ends_rejected(stack: Any, record_history: Any) -> None:
    task, cp = await review(stack)
    r = await stack.decide(cp["id"], "reject", comment="unlimited liability is a no-go")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], ENDED)
    assert done["status"] == "rejected" and done["outcome"] == "unresolved"
    assert "unlimited liability is a no-go" in done["error"]
    assert [c["status"] for c in done["checkpoints"]] == ["rejected"]
    assert [s.status for s in steps(stack, task["id"])] == ["completed", "completed", "rejected"]
    await record_history(task["id"], "contract_rejected")


async def test_the_requester_cannot_sign_off_their_own_contract(stack: Any) -> None:
    task, cp = await review(stack)
    r = await stack.decide(cp["id"], "approve", who="riley")
    assert r.status_code == 403, r.text
    assert (await stack.task(task["id"]))["status"] == "waiting"
    r = await stack.decide(cp["id"], "reject", comment="cleanup")
    assert r.status_code == 200, r.text
    await stack.wait(task["id"], ENDED)
