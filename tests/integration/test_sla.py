"""Checkpoint SLAs on Temporal timers, in the time-skipping test server: after 4 h the admin role
is added (and notified), after 24 h the checkpoint is auto-rejected and the task ends rejected."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Stack, running_stack
from sqlmodel import select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import RefundLedger
from orchestrator.models import NotificationOutbox

pytestmark = pytest.mark.slow


def time_skipping_server() -> str:
    found = Path(sys.executable).parent / "temporal-test-server"
    return str(found) if found.exists() else str(shutil.which("temporal-test-server"))


@pytest.fixture
async def skipping(
    db: Any, router_url: str, demo_model_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Stack, WorkflowEnvironment]]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_server(), data_converter=pydantic_data_converter
    )
    try:
        async with running_stack(db, env.client, router_url, demo_model_url, tmp_path) as stack:
            yield stack, env
    finally:
        await env.shutdown()


async def test_escalation_after_4h_then_auto_reject_after_24h(skipping: Any) -> None:
    stack, env = skipping
    order = stack.make_order("900.00")
    task = await stack.submit(f"Refund 300 EUR on order {order}, never delivered.")
    cp = await stack.open_checkpoint(task["id"])
    assert cp["extra_roles"] == [] and cp["escalation_level"] == 0
    assert cp["due_at"] is not None

    admin_inbox = (
        await stack.api.get("/api/checkpoints?status=open&mine=true", headers=stack.auth("ada"))
    ).json()
    assert cp["id"] not in [c["id"] for c in admin_inbox["items"]]

    await env.sleep(timedelta(hours=4, minutes=1))
    escalated = (await stack.api.get(f"/api/checkpoints/{cp['id']}", headers=stack.auth("ada"))).json()
    assert escalated["status"] == "open"
    assert escalated["extra_roles"] == ["admin"] and escalated["escalation_level"] == 1
    admin_inbox = (
        await stack.api.get("/api/checkpoints?status=open&mine=true", headers=stack.auth("ada"))
    ).json()
    assert cp["id"] in [c["id"] for c in admin_inbox["items"]]
    with session_scope(stack.db.engine) as session:
        kinds = [
            n.kind
            for n in session.exec(
                select(NotificationOutbox).where(NotificationOutbox.payload_json.contains(cp["id"]))
            )
        ]  # type: ignore[attr-defined]
    assert sorted(kinds) == ["checkpoint.escalated", "checkpoint.opened"]

    await env.sleep(timedelta(hours=20))
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "rejected"
    assert "auto-rejected" in done["error"]
    final = (await stack.api.get(f"/api/checkpoints/{cp['id']}", headers=stack.auth("ada"))).json()
    assert final["status"] == "rejected" and final["decided_by"] == "system"
    with session_scope(stack.db.engine) as session:
        assert session.exec(select(RefundLedger).where(RefundLedger.order_id == order)).all() == []


async def test_escalated_checkpoint_can_be_decided_by_admin(skipping: Any) -> None:
    stack, env = skipping
    order = stack.make_order("900.00")
    task = await stack.submit(f"Refund 200 EUR on order {order}.")
    cp = await stack.open_checkpoint(task["id"])
    r = await stack.decide(cp["id"], "approve", who="ada")
    assert r.status_code == 403  # not yet: admin is not assigned before the escalation
    await env.sleep(timedelta(hours=4, minutes=1))
    r = await stack.decide(cp["id"], "approve", who="ada")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed"
