"""The benchmark's floor (bench/floor) runs a refund end to end on real parts: the Temporal dev
server, the LiteLLM proxy in front of the demo model and the seeded SQLite database. It waits for
its approval, takes it as an update, refunds once and answers with the refund decision."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from decimal import Decimal

import pytest
from conftest import ROUTER_KEY, SeededDb
from repo_paths import REPO_ROOT
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import DemoOrder, RefundLedger

pytestmark = pytest.mark.router


async def test_floor_refund_waits_for_its_approval_and_refunds_once(
    temporal_env: WorkflowEnvironment, router_url: str, sqlite_db: SeededDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # bench/ is a folder of the checkout, not a package
    from bench.floor import AWAITING_QUERY, DECIDE_UPDATE, WORKFLOW_NAME
    from bench.floor.activities import FloorActivities
    from bench.floor.types import Decision, FloorInput, FloorResult
    from bench.floor.worker import build_worker

    order = f"ORD-{secrets.randbelow(10**8):08d}"
    with session_scope(sqlite_db.engine) as session:
        session.add(DemoOrder(id=order, tenant_id="acme", customer="C", email="c@example.com",
                              amount=Decimal("600.00"), currency="EUR", status="delivered"))  # fmt: skip
    # The floor uses temporalio's default converter, as a bare workflow would.
    client = await Client.connect(temporal_env.client.service_client.config.target_host)
    queue = f"floor-test-{secrets.token_hex(3)}"
    activities = FloorActivities(sqlite_db.engine, router_url, ROUTER_KEY)
    task_id = f"floor-{uuid.uuid4().hex[:12]}"
    async with build_worker(client, queue, activities):
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            FloorInput(task_id, "acme", f"Order {order}: refund 150 EUR, the parcel was lost."),
            id=task_id,
            task_queue=queue,
            result_type=FloorResult,
        )
        for _ in range(300):
            if await handle.query(AWAITING_QUERY, result_type=bool):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the floor never waited for its approval")
        with session_scope(sqlite_db.engine) as session:  # nothing refunded before the approval
            assert not session.exec(select(RefundLedger).where(RefundLedger.task_id == task_id)).all()
        answer = await handle.execute_update(
            DECIDE_UPDATE, Decision(approve=True, by="avery"), result_type=str
        )
        assert answer == "approved"
        result = await handle.result()
    await activities.http.aclose()

    assert result.error is None, result.error
    assert result.output is not None and result.output["action"] == "refunded", result.output
    assert result.output["amount"] == "150.00" and result.turns == 3
    with session_scope(sqlite_db.engine) as session:
        rows = session.exec(select(RefundLedger).where(RefundLedger.task_id == task_id)).all()
        assert [(r.order_id, r.amount) for r in rows] == [(order, Decimal("150.00"))]
        assert session.get(DemoOrder, order).refunded_amount == Decimal("150.00")  # type: ignore[union-attr]
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["floor.model_call", "floor.lookup_order", "floor.model_call",
                         "floor.issue_refund", "floor.model_call"]  # fmt: skip
