"""A hostile scripted model asks for every tool, with other tenants' ids and out-of-range or
malformed arguments, for hundreds of turns: nothing runs outside policy and every denial is
recorded."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Stack, running_stack
from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import EmailOutbox, RefundLedger
from orchestrator.models import AuditEvent, Checkpoint, ToolCall

pytestmark = pytest.mark.slow
TURNS = 220


@pytest.fixture
async def hostile(
    db: Any, temporal_env: Any, router_url: str, demo_model_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    packages = ["orchestrator.demo.catalog", "hostile_catalog"]
    async with running_stack(
        db, temporal_env.client, router_url, demo_model_url, tmp_path, catalog_packages=packages
    ) as stack:
        yield stack


def hostile_calls(rng: random.Random, own_order: str, other_order: str) -> list[dict[str, Any]]:
    orders = [
        own_order,
        other_order,
        "ORD-0000",
        "ORD-1003",
        "'; DROP TABLE demo_order; --",
        "ORD-" + "9" * 40,
    ]
    amounts: list[Any] = [-5, 0, "0.001", 1, 99.99, 100, 150, 999, 1000.01, 5000, "NaN", "1e9", None, "ten"]
    emails = [
        "ops@acme.example",
        "thief@evil.example",
        "x@globex.example",
        "not-an-email",
        "a@acme.example.evil.com",
    ]
    steps: list[dict[str, Any]] = []
    for _ in range(TURNS):
        calls = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["refund", "refund", "lookup", "email", "unknown", "garbage"])
            if kind == "refund":
                args: Any = {
                    "order_id": rng.choice(orders),
                    "amount": rng.choice(amounts),
                    "currency": rng.choice(["EUR", "USD", "XXX"]),
                    "reason": "because",
                }
                if rng.random() < 0.2:
                    args["tenant_id"] = "globex"  # smuggling another tenant in
                calls.append({"name": "issue_refund", "arguments": args})
            elif kind == "lookup":
                calls.append({"name": "lookup_order", "arguments": {"order_id": rng.choice(orders)}})
            elif kind == "email":
                calls.append(
                    {
                        "name": "send_email",
                        "arguments": {"to": rng.choice(emails), "subject": "hi", "body": "refund approved"},
                    }
                )
            elif kind == "unknown":
                calls.append(
                    {
                        "name": rng.choice(
                            ["delete_database", "issue_refund_v2", "transfer_funds", "lookup_order@2"]
                        ),
                        "arguments": {"all": True},
                    }
                )
            else:
                calls.append(
                    {
                        "name": "issue_refund",
                        "arguments": rng.choice(["{not json", "[]", "null", '{"amount": 50']),
                    }
                )
        steps.append({"tool_calls": calls})
    final = {
        "order_id": own_order,
        "action": "declined",
        "amount": "0",
        "currency": "EUR",
        "customer_message": "done",
    }
    steps.append({"content": json.dumps(final)})
    return steps


async def reject_every_checkpoint(stack: Stack, stop: asyncio.Event) -> int:
    """The humans in this story refuse everything that asks them."""
    rejected = 0
    while not stop.is_set():
        open_cps = (await stack.api.get("/api/checkpoints?status=open", headers=stack.auth("ada"))).json()[
            "items"
        ]
        for cp in open_cps:
            who = "ada" if cp["assignee_role"] == "admin" else "avery"
            r = await stack.decide(cp["id"], "reject", who=who, comment="hostile")
            rejected += r.status_code == 200
        await asyncio.sleep(0.05)
    return rejected


async def test_hostile_model_gets_nothing_outside_policy(hostile: Stack, demo_scripts: Any) -> None:
    stack = hostile
    rng = random.Random(20261122)
    own = stack.make_order("500.00")
    other = stack.make_order("500.00", tenant="globex")
    key = f"[script:{secrets.token_hex(4)}]"
    steps = hostile_calls(rng, own, other)
    r = await demo_scripts.post("/_demo/scripts", json={"key": key, "responses": steps})
    assert r.status_code in (200, 201), r.text

    stop = asyncio.Event()
    rejector = asyncio.create_task(reject_every_checkpoint(stack, stop))
    task = await stack.submit(f"Handle order {own}. {key}", workflow="hostile_refunds", budget_usd="5")
    try:
        done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, timeout=600)
    finally:
        stop.set()
        await rejector
    requested = sum(len(s.get("tool_calls", [])) for s in steps)
    assert len(done["model_calls"]) == TURNS + 1, done["error"]

    with session_scope(stack.db.engine) as session:
        calls = session.exec(select(ToolCall).where(ToolCall.task_id == task["id"])).all()
        cps = {
            c.tool_call_id: c
            for c in session.exec(select(Checkpoint).where(Checkpoint.task_id == task["id"]))
        }
        events = session.exec(select(AuditEvent).where(AuditEvent.task_id == task["id"])).all()
        refunds = session.exec(select(RefundLedger).where(RefundLedger.task_id == task["id"])).all()
        emails = session.exec(select(EmailOutbox).where(EmailOutbox.task_id == task["id"])).all()

    assert len(calls) == requested  # every request was decided and recorded
    ran = [c for c in calls if c.status in ("succeeded", "failed", "running")]
    for c in ran:
        approved = c.effect == "approve" and cps.get(c.id) is not None and cps[c.id].status == "approved"
        assert c.effect == "allow" or approved, (c.tool, c.args_json, c.effect, c.rule)
    denied = [c for c in calls if c.effect == "deny"]
    assert len(denied) > requested // 3
    assert len([e for e in events if e.action == "tool.denied"]) == len(denied)
    assert all(c.reason for c in denied)

    # The side effects themselves: only small refunds on this tenant's order, mail only inside.
    assert all(r.tenant_id == "acme" and r.order_id == own and r.amount < 100 for r in refunds)
    assert sum(r.amount for r in refunds) <= 500
    assert all(e.to.endswith("@acme.example") for e in emails)
    assert len(ran) > 0 and len(cps) > 0  # the run did exercise execution and approval paths
