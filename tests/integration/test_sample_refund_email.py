"""refund_request@2 end to end on the real stack: the refund, a customer e-mail drafted at the
frontier tier, and the e-mail sent through the outbox by a tool step of the workflow itself.

Rejection path, as documented in orchestrator/demo/catalog/refund_email.py: a refund an approver
rejects ends the task `rejected` at the refund step, so no e-mail goes out (the person who
rejected it owns the conversation); a refund the agent declines itself is e-mailed as declined.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import EmailOutbox, RefundLedger

TERMINAL = {"completed", "failed", "rejected", "cancelled"}


def outbox(stack: Any, task_id: str) -> list[EmailOutbox]:
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(EmailOutbox).where(EmailOutbox.task_id == task_id)))


def ledger(stack: Any, order_id: str) -> list[RefundLedger]:
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(RefundLedger).where(RefundLedger.order_id == order_id)))


async def test_small_refund_is_emailed_to_the_customer(stack: Any, record_history: Any) -> None:
    order = stack.make_order("80.00")
    # The bare name runs the latest version: @2.
    task = await stack.submit(
        f"Please refund 25 EUR on order {order}, one item was missing.", workflow="refund_request"
    )
    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "completed", done["error"]
    assert done["outcome"] == "resolved"
    assert done["workflow"] == "refund_request@2"
    assert done["checkpoints"] == []
    assert [r.amount for r in ledger(stack, order)] == [Decimal("25.00")]

    steps = [(s["name"], s["status"]) for s in done["steps"]]
    assert steps == [("handle_refund", "completed"), ("customer_email", "completed"), ("send", "completed")]
    by_name = {s["name"]: s for s in done["steps"]}
    assert by_name["handle_refund"]["output"]["action"] == "refunded"
    draft = by_name["customer_email"]["output"]

    (mail,) = outbox(stack, task["id"])
    assert mail.to == f"orders+{order}@example.com" == draft["to"]
    assert (mail.subject, mail.body) == (draft["subject"], draft["body"])  # sent exactly as drafted
    assert order in mail.subject
    assert "refunded 25.00 EUR" in mail.body
    assert done["output"] == {"email_id": mail.id, "to": mail.to, "status": "queued"}

    # The e-mail was drafted at the frontier tier; every call counts toward the cost.
    emailer = [c for c in done["model_calls"] if c["step"] == "customer_email"]
    assert [c["tier"] for c in emailer] == ["tier-frontier"]
    assert Decimal(done["cost"]["total_usd"]) == sum(Decimal(c["cost_usd"]) for c in done["model_calls"])

    # The send is the workflow's own tool call, authorized by policy like any other.
    sends = [t for t in done["tool_calls"] if t["tool"] == "send_email"]
    assert len(sends) == 1
    (send,) = sends
    assert (send["agent"], send["step"], send["effect"], send["status"]) == (
        "workflow:refund_request",
        "send",
        "allow",
        "succeeded",
    )
    assert send["rule"].startswith("refund-customer-email"), send["rule"]
    assert send["args"] == {"to": mail.to, "subject": mail.subject, "body": mail.body}
    await record_history(task["id"], "refund_email")


async def test_refund_the_agent_declines_is_emailed_as_declined(stack: Any) -> None:
    order = stack.make_order("5000.00")
    task = await stack.submit(f"Refund 2500 EUR on order {order}.", workflow="refund_request@2")
    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "completed", done["error"]
    assert done["steps"][0]["output"]["action"] == "declined"  # over the policy limit: denied
    assert ledger(stack, order) == []
    (mail,) = outbox(stack, task["id"])
    assert mail.to == f"orders+{order}@example.com"
    assert f"could not refund order {order}" in mail.body
    assert "colleague" in mail.body


async def test_refund_rejected_at_the_checkpoint_sends_no_email(stack: Any) -> None:
    order = stack.make_order("500.00")
    task = await stack.submit(
        f"Refund 400 EUR on order {order}, customer changed their mind.", workflow="refund_request@2"
    )
    cp = await stack.open_checkpoint(task["id"])
    assert (cp["tool"], cp["step"]) == ("issue_refund", "handle_refund")
    r = await stack.decide(cp["id"], "reject", comment="outside the return window")
    assert r.status_code == 200, r.text

    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "rejected"
    assert done["outcome"] == "unresolved"
    assert "outside the return window" in done["error"]
    assert done["output"]["action"] == "declined"
    assert [(s["name"], s["status"]) for s in done["steps"]] == [("handle_refund", "rejected")]
    assert ledger(stack, order) == []
    assert outbox(stack, task["id"]) == []
    assert {c["step"] for c in done["model_calls"]} == {"handle_refund"}  # no e-mail was drafted
