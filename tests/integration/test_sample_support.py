"""The support ticket triage sample end to end: API -> Temporal -> worker -> LiteLLM -> demo model,
on the real `demo_ticket` table.

Happy path (a clear ticket is answered on the cheap tier), escalation path (a vague or mixed
ticket climbs the ladder from tier-slm to tier-frontier, and both rungs are paid for), and the
regulated path (a privacy request waits for a person, who approves or rejects the draft).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from orchestrator.catalog.context import TaskFacts, ToolContext, sessions_of
from orchestrator.catalog.registry import ToolFailure
from orchestrator.db import session_scope
from orchestrator.demo.catalog.settings import DemoCatalogSettings
from orchestrator.demo.catalog.support_models import LookupTicketArgs, UpdateTicketArgs
from orchestrator.demo.catalog.support_tools import lookup_ticket, update_ticket
from orchestrator.demo.catalog.tables import DemoTicket
from orchestrator.demo.seed import DEMO_TICKETS
from orchestrator.models import TaskStep

WORKFLOW = "ticket_triage@1"
TICKETS = {t[0]: t for t in DEMO_TICKETS}
ENDED = {"completed", "failed", "rejected", "cancelled"}


def make_ticket(engine: Engine, like: str) -> str:
    """A fresh copy of a demo ticket (so tests never share a row)."""
    _, customer, email, subject, body = TICKETS[like]
    ticket_id = f"TCK-{random.randint(100000, 99999999)}"
    with session_scope(engine) as session:
        session.add(
            DemoTicket(
                id=ticket_id, tenant_id="acme", customer=customer, email=email, subject=subject, body=body
            )
        )
    return ticket_id


def ticket(engine: Engine, ticket_id: str) -> DemoTicket:
    with session_scope(engine) as session:
        row = session.get(DemoTicket, ticket_id)
        assert row is not None
        session.expunge(row)
        return row


def steps(stack: Any, task_id: str) -> dict[str, TaskStep]:
    with session_scope(stack.db.engine) as session:
        rows = session.exec(
            select(TaskStep).where(TaskStep.task_id == task_id).order_by(TaskStep.index)
        ).all()
        for row in rows:
            session.expunge(row)
        return {row.name: row for row in rows}


def tiers(task: dict[str, Any]) -> list[str]:
    return [c["tier"] for c in task["model_calls"]]


async def test_a_clear_ticket_is_answered_on_the_cheap_tier(stack: Any) -> None:
    ticket_id = make_ticket(stack.db.engine, "TCK-2001")  # login problem
    task = await stack.submit(f"Please triage support ticket {ticket_id}.", workflow=WORKFLOW)
    done = await stack.wait(task["id"], ENDED)
    assert done["status"] == "completed", done["error"]
    assert done["outcome"] == "resolved"
    assert done["workflow"] == WORKFLOW
    assert done["checkpoints"] == []

    assert tiers(done) == ["tier-slm", "tier-slm", "tier-open"]  # lookup + answer, then the draft
    recorded = steps(stack, task["id"])
    assert [(s.name, s.kind, s.status) for s in recorded.values()] == [
        ("triage", "agent", "completed"),
        ("draft", "agent", "completed"),
        ("regulated_review", "checkpoint", "skipped"),
        ("update", "tool", "completed"),
    ]
    assert (recorded["triage"].rung, recorded["triage"].tier) == (1, "tier-slm")
    assert (recorded["draft"].rung, recorded["draft"].tier) == (1, "tier-open")
    by_step = {s["name"]: s for s in done["steps"]}
    triaged, drafted = by_step["triage"]["output"], by_step["draft"]["output"]
    assert (triaged["ticket_id"], triaged["intent"], triaged["regulated"]) == (ticket_id, "login", False)
    assert triaged["confidence"] >= 0.7 and triaged["customer"] == "Jane Doe"
    assert drafted["subject"].startswith(f"[{ticket_id}]") and drafted["body"].startswith("Hello Jane,")

    tools = [(t["tool"], t["agent"], t["effect"], t["status"]) for t in done["tool_calls"]]
    assert tools == [
        ("lookup_ticket", "support_triage", "allow", "succeeded"),
        ("update_ticket", "workflow:ticket_triage", "allow", "succeeded"),
    ]
    update = done["tool_calls"][1]
    assert update["rule"].startswith("ticket-answer")
    assert update["args"] == {
        "ticket_id": ticket_id,
        "status": "answered",
        "intent": "login",
        "reply": drafted["body"],
    }
    assert done["output"]["ticket_id"] == ticket_id and done["output"]["status"] == "answered"

    row = ticket(stack.db.engine, ticket_id)
    assert (row.status, row.intent, row.reply) == ("answered", "login", drafted["body"])
    assert row.update_key  # the idempotency key of the update that wrote it


@pytest.mark.parametrize(
    ("like", "intent"), [("TCK-2006", "other"), ("TCK-2007", "login")], ids=["vague", "mixed"]
)
async def test_an_unsure_triage_escalates_to_the_frontier_and_pays_for_both_rungs(
    stack: Any, like: str, intent: str, record_history: Any
) -> None:
    ticket_id = make_ticket(stack.db.engine, like)
    task = await stack.submit(f"Ticket {ticket_id} needs triage.", workflow=WORKFLOW)
    done = await stack.wait(task["id"], ENDED)
    assert done["status"] == "completed", done["error"]
    assert done["checkpoints"] == []  # the frontier was sure: no person needed

    # rung 1 (tier-slm) answered with a low confidence, rung 2 (tier-frontier) resolved the step
    assert tiers(done) == ["tier-slm", "tier-slm", "tier-frontier", "tier-frontier", "tier-open"]
    triage_calls = [c for c in done["model_calls"] if c["step"] == "triage"]
    recorded = steps(stack, task["id"])
    assert (recorded["triage"].rung, recorded["triage"].tier) == (2, "tier-frontier")
    triaged = {s["name"]: s for s in done["steps"]}["triage"]["output"]
    assert triaged["intent"] == intent and triaged["confidence"] >= 0.7

    # every rung's cost counts toward the task
    costs = [Decimal(c["cost_usd"]) for c in done["model_calls"]]
    assert all(c > 0 for c in costs)
    assert Decimal(done["cost"]["total_usd"]) == sum(costs)
    assert done["cost"]["model_calls"] == len(costs)
    slm = sum(Decimal(c["cost_usd"]) for c in triage_calls if c["tier"] == "tier-slm")
    frontier = sum(Decimal(c["cost_usd"]) for c in triage_calls if c["tier"] == "tier-frontier")
    assert 0 < slm < frontier

    row = ticket(stack.db.engine, ticket_id)
    assert (row.status, row.intent) == ("answered", intent)
    await record_history(task["id"], "triage_escalated")


@pytest.mark.parametrize("decision", ["reject", "approve"])
async def test_a_regulated_ticket_waits_for_a_person(stack: Any, decision: str) -> None:
    ticket_id = make_ticket(stack.db.engine, "TCK-2003")  # a GDPR erasure request
    task = await stack.submit(f"Please handle ticket {ticket_id}.", workflow=WORKFLOW)
    cp = await stack.open_checkpoint(task["id"])
    assert (cp["kind"], cp["step"], cp["assignee_role"]) == ("output_review", "regulated_review", "approver")
    draft = cp["args"]["output"]
    assert draft["subject"].startswith(f"[{ticket_id}]") and "GDPR" in draft["body"]
    assert ticket(stack.db.engine, ticket_id).status == "open"  # nothing answered before the decision

    waiting = await stack.task(task["id"])
    triaged = {s["name"]: s for s in waiting["steps"]}["triage"]["output"]
    assert (triaged["intent"], triaged["regulated"]) == ("privacy", True)
    assert tiers(waiting) == ["tier-slm", "tier-slm", "tier-open"]

    r = await stack.decide(cp["id"], decision, comment="checked with the DPO")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], ENDED)
    row = ticket(stack.db.engine, ticket_id)
    if decision == "reject":
        assert done["status"] == "rejected" and done["outcome"] == "unresolved"
        assert "checked with the DPO" in done["error"]
        assert "update_ticket" not in [t["tool"] for t in done["tool_calls"]]
        assert (row.status, row.intent, row.reply) == ("open", None, None)
        assert steps(stack, task["id"])["regulated_review"].status == "rejected"
    else:
        assert done["status"] == "completed", done["error"]
        assert (row.status, row.intent, row.reply) == ("answered", "privacy", draft["body"])


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_the_ticket_tools_are_tenant_scoped_and_idempotent(db: Any) -> None:
    ticket_id = make_ticket(db.engine, "TCK-2004")

    facts = TaskFacts(
        workflow=WORKFLOW, step="update", agent="workflow:ticket_triage", data_classification="internal"
    )

    def ctx(key: str, tenant: str = "acme") -> ToolContext[DemoCatalogSettings]:
        return ToolContext(
            tenant_id=tenant,
            task_id="tsk_test",
            idempotency_key=key,
            facts=facts,
            settings=DemoCatalogSettings(),
            heartbeat=lambda *a: None,
            sessions=sessions_of(db.engine),
        )

    seen = await lookup_ticket(LookupTicketArgs(ticket_id=ticket_id), ctx("k0"))
    assert (seen["ticket_id"], seen["customer"], seen["status"]) == (ticket_id, "Sam Carter", "open")
    with pytest.raises(ToolFailure, match="not found"):
        await lookup_ticket(LookupTicketArgs(ticket_id=ticket_id), ctx("k0", tenant="globex"))

    args = UpdateTicketArgs(ticket_id=ticket_id, status="answered", intent="bug", reply="We are on it.")
    first = await update_ticket(args, ctx("task:update:0"))
    stamped = ticket(db.engine, ticket_id).updated_at
    again = await update_ticket(args, ctx("task:update:0"))  # a retried activity
    assert (first["replayed"], again["replayed"]) == (False, True)
    row = ticket(db.engine, ticket_id)
    assert (row.status, row.intent, row.reply, row.updated_at) == (
        "answered",
        "bug",
        "We are on it.",
        stamped,
    )
    with pytest.raises(ToolFailure, match="not found"):
        await update_ticket(args, ctx("task:update:1", tenant="globex"))

    closed = args.model_copy(update={"status": "closed"})
    assert (await update_ticket(closed, ctx("other-task:update:0")))["replayed"] is False
    assert ticket(db.engine, ticket_id).status == "closed"
