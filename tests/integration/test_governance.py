"""Checkpoints complete: edits, request changes, N approvers, races, reassignment, comments, cancel."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Any

from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import RefundLedger
from orchestrator.models import AuditEvent


def ledger(stack: Any, order_id: str) -> list[RefundLedger]:
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(RefundLedger).where(RefundLedger.order_id == order_id)))


async def refund_waiting(
    stack: Any, amount: str, order_total: str = "2000.00"
) -> tuple[dict[str, Any], dict[str, Any], str]:
    order = stack.make_order(order_total)
    task = await stack.submit(f"Refund {amount} EUR on order {order}, the item was damaged.")
    cp = await stack.open_checkpoint(task["id"])
    return task, cp, order


async def test_approve_with_edits_runs_the_edited_arguments(stack: Any, record_history: Any) -> None:
    task, cp, order = await refund_waiting(stack, "300")
    edited = {**cp["args"], "amount": "250.00"}
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={"decision": "approve_with_edits", "edited_args": edited, "comment": "partial refund"},
        headers=stack.auth("avery"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "approved"
    assert body["edit_diff"] == {"amount": {"from": "300.00", "to": "250.00"}}
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    assert [row.amount for row in ledger(stack, order)] == [Decimal("250.00")]
    refund = next(t for t in done["tool_calls"] if t["tool"] == "issue_refund")
    assert refund["args"]["amount"] == "250.00" and refund["status"] == "succeeded"
    assert refund["args_digest"] == body["args_digest"] != cp["args_digest"]
    await record_history(task["id"], "approved_with_edits")


async def test_edits_beyond_policy_or_invalid_are_refused_and_nothing_changes(stack: Any) -> None:
    task, cp, order = await refund_waiting(stack, "300")
    for edited, detail in [
        ({**cp["args"], "amount": "5000.00"}, "refused by policy"),
        ({**cp["args"], "amount": "-5"}, "edited arguments are invalid"),
        ({**cp["args"], "order_id": "not-an-order"}, "edited arguments are invalid"),
    ]:
        r = await stack.api.post(
            f"/api/checkpoints/{cp['id']}/decision",
            json={"decision": "approve_with_edits", "edited_args": edited},
            headers=stack.auth("avery"),
        )
        assert r.status_code == 422, r.text
        assert detail in r.json()["detail"]
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={"decision": "approve_with_edits"},
        headers=stack.auth("avery"),
    )
    assert r.status_code == 422
    still = (await stack.api.get(f"/api/checkpoints/{cp['id']}", headers=stack.auth("avery"))).json()
    assert still["status"] == "open" and still["decisions"] == [] and still["args"] == cp["args"]
    assert ledger(stack, order) == []
    assert (await stack.decide(cp["id"], "approve")).status_code == 200
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed" and [r.amount for r in ledger(stack, order)] == [Decimal("300.00")]


async def test_request_changes_goes_back_to_the_agent(stack: Any) -> None:
    task, cp, order = await refund_waiting(stack, "300")
    r = await stack.decide(cp["id"], "request_changes", comment="ask the customer for a photo first")
    assert r.status_code == 200 and r.json()["status"] == "changes_requested"
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed"
    assert done["output"]["action"] == "declined"  # the agent heard back and did not refund
    assert ledger(stack, order) == []
    refund = next(t for t in done["tool_calls"] if t["tool"] == "issue_refund")
    assert refund["status"] == "changes_requested"


async def test_large_refund_needs_two_distinct_approvers(stack: Any, record_history: Any) -> None:
    task, cp, order = await refund_waiting(stack, "700")
    assert cp["approvers_required"] == 2
    first = await stack.decide(cp["id"], "approve")
    assert first.status_code == 200 and first.json()["status"] == "open"
    again = await stack.decide(cp["id"], "approve")
    assert again.status_code == 409 and "another approver" in again.json()["detail"]
    assert ledger(stack, order) == []
    second = await stack.decide(cp["id"], "approve", who="blake")
    assert second.status_code == 200 and second.json()["status"] == "approved"
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed" and len(ledger(stack, order)) == 1
    detail = (await stack.api.get(f"/api/checkpoints/{cp['id']}", headers=stack.auth("avery"))).json()
    assert [d["decider_id"] for d in detail["decisions"]] == [
        stack.db.user_ids["avery"],
        stack.db.user_ids["blake"],
    ]
    await record_history(task["id"], "two_approvers")


async def test_hundred_concurrent_decisions_one_wins(stack: Any) -> None:
    task, cp, order = await refund_waiting(stack, "300")
    who = ["avery", "blake"] * 50
    kinds = ["approve", "reject"] * 50
    responses = await asyncio.gather(
        *[stack.decide(cp["id"], k, who=w) for k, w in zip(kinds, who, strict=True)]
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, codes
    assert codes.count(409) == 99, codes
    winner = next(r for r in responses if r.status_code == 200).json()
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    expected_rows = 1 if winner["status"] == "approved" else 0
    assert len(ledger(stack, order)) == expected_rows
    with session_scope(stack.db.engine) as session:
        decided = session.exec(
            select(AuditEvent).where(
                AuditEvent.subject == cp["id"], AuditEvent.action == "checkpoint.decided"
            )
        ).all()
        ran = session.exec(
            select(AuditEvent).where(AuditEvent.task_id == task["id"], AuditEvent.action == "tool.ran")
        ).all()
    assert len(decided) == 1
    assert len(ran) == 1 + expected_rows  # lookup_order, and issue_refund only when approved
    assert done["status"] == ("completed" if expected_rows else "rejected")


async def test_requester_cannot_decide_and_others_need_the_role(stack: Any) -> None:
    _, cp, _ = await refund_waiting(stack, "300")
    r = await stack.decide(cp["id"], "approve", who="riley")
    assert r.status_code == 403
    r = await stack.decide(cp["id"], "approve", who="dev")  # a developer holds no approver role
    assert r.status_code == 403
    assert (await stack.decide(cp["id"], "reject")).status_code == 200


async def test_reassign_to_a_named_approver_and_comment(stack: Any) -> None:
    task, cp, _ = await refund_waiting(stack, "300")
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/reassign",
        json={
            "assignee_role": "admin",
            "named_approvers": ["blake@acme.example"],
            "comment": "Blake owns this account",
        },
        headers=stack.auth("ada"),
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["named_approvers"] == [stack.db.user_ids["blake"]] and r.json()["assignee_role"] == "admin"
    )
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/reassign", json={"assignee_role": "admin"}, headers=stack.auth("avery")
    )
    assert r.status_code == 403
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/reassign",
        json={"named_approvers": ["nobody@nowhere.example"]},
        headers=stack.auth("ada"),
    )
    assert r.status_code == 422 and "not a member" in r.json()["detail"]

    for who, text in [("riley", "Customer sent photos."), ("blake", "Looking now.")]:
        c = await stack.api.post(
            f"/api/checkpoints/{cp['id']}/comments", json={"body": text}, headers=stack.auth(who)
        )
        assert c.status_code == 201, c.text
    c = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/comments", json={"body": "hi"}, headers=stack.auth("gina")
    )
    assert c.status_code == 404

    assert (await stack.decide(cp["id"], "approve")).status_code == 403  # avery is no longer assigned
    assert (await stack.decide(cp["id"], "approve", who="blake")).status_code == 200
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed"
    detail = (await stack.api.get(f"/api/checkpoints/{cp['id']}", headers=stack.auth("riley"))).json()
    assert [c["body"] for c in detail["comments"]] == ["Customer sent photos.", "Looking now."]


async def test_inbox_shows_only_what_i_may_decide(stack: Any) -> None:
    _, cp, _ = await refund_waiting(stack, "300")
    mine = (
        await stack.api.get("/api/checkpoints?status=open&mine=true", headers=stack.auth("avery"))
    ).json()["items"]
    assert cp["id"] in [c["id"] for c in mine]
    admin = (await stack.api.get("/api/checkpoints?status=open&mine=true", headers=stack.auth("ada"))).json()[
        "items"
    ]
    assert cp["id"] not in [c["id"] for c in admin]  # until an escalation adds the admin role
    assert (await stack.decide(cp["id"], "reject")).status_code == 200


async def test_cancel_at_checkpoint_ends_quickly_and_runs_nothing(stack: Any) -> None:
    task, cp, order = await refund_waiting(stack, "300")
    started = asyncio.get_running_loop().time()
    r = await stack.api.post(f"/api/tasks/{task['id']}/cancel", headers=stack.auth("riley"))
    assert r.status_code == 202
    done = await stack.wait(task["id"], {"cancelled"}, timeout=5)
    assert asyncio.get_running_loop().time() - started < 5
    assert done["checkpoints"][0]["status"] == "cancelled"
    assert (await stack.decide(cp["id"], "approve")).status_code == 409
    assert ledger(stack, order) == []


async def test_endless_tool_loop_ends_limit_reached(stack: Any, demo_scripts: Any) -> None:
    key = f"[script:{secrets.token_hex(4)}]"
    order = stack.make_order("50.00")
    loop = {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": order}}]}
    r = await demo_scripts.post("/_demo/scripts", json={"key": key, "responses": [loop], "repeat_last": True})
    assert r.status_code in (200, 201)
    task = await stack.submit(f"Look at order {order}. {key}")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "failed"
    assert "limit reached" in done["error"] and "used all 6 turns" in done["error"]
    assert done["steps"][0]["status"] == "limit_reached"
    assert len(done["model_calls"]) == 6


async def test_edit_into_a_stricter_rule_needs_its_approvers(stack: Any) -> None:
    task, cp, order = await refund_waiting(stack, "150")
    assert cp["approvers_required"] == 1
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={"decision": "approve_with_edits", "edited_args": {**cp["args"], "amount": "700.00"}},
        headers=stack.auth("avery"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["approvers_required"] == 2
    assert ledger(stack, order) == []
    assert (await stack.decide(cp["id"], "approve", who="blake")).status_code == 200
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed"
    assert [row.amount for row in ledger(stack, order)] == [Decimal("700.00")]


async def test_stop_switch_flipped_while_waiting_keeps_the_tool_from_running(stack: Any) -> None:
    task, cp, order = await refund_waiting(stack, "300")
    flip = {"scope": "tool", "subject": "issue_refund", "mode": "stop", "reason": "fraud wave"}
    r = await stack.api.post("/api/switches", json={**flip, "active": True}, headers=stack.auth("ada"))
    assert r.status_code in (200, 201), r.text
    await asyncio.sleep(1.0)  # a flip applies to the next decision within 1 s (switch caches)
    try:
        assert (await stack.decide(cp["id"], "approve")).status_code == 200
        done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    finally:
        await stack.api.post("/api/switches", json={**flip, "active": False}, headers=stack.auth("ada"))
    assert ledger(stack, order) == []
    assert done["output"]["action"] == "declined"


async def test_cancel_during_a_model_call_ends_cancelled_and_releases_the_budget(
    stack: Any, demo_scripts: Any
) -> None:
    key = f"[script:{secrets.token_hex(4)}]"
    r = await demo_scripts.post(
        "/_demo/scripts", json={"key": key, "responses": [{"default": True, "delay": 8}]}
    )
    assert r.status_code in (200, 201)
    order = stack.make_order("80.00")
    task = await stack.submit(f"Refund 30 EUR on order {order}. {key}")
    await stack.wait(task["id"], {"running"})
    await asyncio.sleep(1.0)  # the first model call is in flight (the demo model holds it 8 s)
    r = await stack.api.post(f"/api/tasks/{task['id']}/cancel", headers=stack.auth("riley"))
    assert r.status_code == 202
    done = await stack.wait(task["id"], {"cancelled", "failed", "completed"}, timeout=5)
    assert done["status"] == "cancelled"
    with session_scope(stack.db.engine) as session:
        from orchestrator.models import BudgetReservation

        rows = session.exec(select(BudgetReservation).where(BudgetReservation.task_id == task["id"])).all()
    assert rows and all(r.status in ("released", "settled") for r in rows)
