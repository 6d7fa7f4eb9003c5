"""A task pins the definition versions it started with: after a deploy that adds new versions,
the task in flight finishes on its own, and new tasks get the new ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from conftest import stack_settings
from sqlmodel import select

from orchestrator.app import build_state, create_app
from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import EmailOutbox
from workers.worker import build_router, build_worker


async def test_in_flight_task_keeps_its_versions_after_a_deploy(api_only: Any, tmp_path: Path) -> None:
    stack = api_only
    order = stack.make_order("500.00")
    async with build_router(stack.settings) as router:
        async with build_worker(stack.client, stack.settings, engine=stack.db.engine, router=router):
            task = await stack.submit(
                f"Refund 150 EUR on order {order}, it broke.", workflow="refund_request"
            )
            cp = await stack.open_checkpoint(task["id"])
    assert task["workflow"] == "refund_request@2"

    # The deploy: new definitions, the same task queue, a new worker and a new API process.
    deployed = stack_settings(
        stack.db,
        stack.router_url,
        tmp_path,
        task_queue=stack.settings.task_queue,
        catalog_packages=["orchestrator.demo.catalog", "pinning_catalog"],
    )
    app = create_app(deployed, state=build_state(deployed, engine=stack.db.engine, temporal=stack.client))
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://deployed") as api,
        build_router(deployed) as router,
    ):
        stack.api = api
        async with build_worker(stack.client, deployed, engine=stack.db.engine, router=router):
            assert (await stack.decide(cp["id"], "approve")).status_code == 200
            done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
            fresh = await stack.submit(
                f"Refund 20 EUR on order {stack.make_order('50.00')}.", workflow="refund_request"
            )
            fresh_done = await stack.wait(fresh["id"], {"completed", "failed", "rejected"})

    assert done["status"] == "completed", done["error"]
    assert done["workflow"] == "refund_request@2"
    assert [s["name"] for s in done["steps"]] == ["handle_refund", "customer_email", "send"]
    assert {c["tier"] for c in done["model_calls"]} == {"tier-frontier"}  # refund_agent@1, not @7
    with session_scope(stack.db.engine) as session:
        assert session.exec(select(EmailOutbox).where(EmailOutbox.task_id == task["id"])).first() is not None

    assert fresh["workflow"] == "refund_request@9"
    assert fresh_done["status"] == "completed", fresh_done["error"]
    assert {c["tier"] for c in fresh_done["model_calls"]} == {"tier-slm"}
