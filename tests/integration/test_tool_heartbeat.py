"""A catalog tool that works longer than the tool activity's heartbeat timeout without calling
`ctx.heartbeat` runs once and completes: the worker heartbeats around the tool call itself
(workers/activities/outages.py), so only a dead worker, not quiet tool code, times it out."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from conftest import SeededDb, stack_settings
from quiet_tool_catalog import POLICY_RULE, QUIET_SECONDS
from repo_paths import SHIPPED_POLICIES
from temporalio.testing import WorkflowEnvironment

from orchestrator.app import build_state, create_app
from workers.worker import build_router, build_worker
from workers.workflows.support import TOOL_OPTS

pytestmark = pytest.mark.slow


async def test_a_quiet_tool_longer_than_the_heartbeat_timeout_runs_once(
    sqlite_db: SeededDb, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    assert TOOL_OPTS.heartbeat_timeout is not None
    assert QUIET_SECONDS > TOOL_OPTS.heartbeat_timeout.total_seconds()
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICIES, policies)
    with (policies / "tool_policy.csv").open("a") as f:
        f.write(POLICY_RULE + "\n")
    settings = stack_settings(
        sqlite_db, "http://127.0.0.1:9", tmp_path, catalog_packages=["quiet_tool_catalog"], policies_dir=policies
    )
    app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine, temporal=temporal_env.client))
    marker = tmp_path / "runs"
    auth = {"Authorization": f"Bearer {sqlite_db.tokens['riley']}"}
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as api,
        build_router(settings) as router,
        build_worker(temporal_env.client, settings, engine=sqlite_db.engine, router=router),
    ):
        r = await api.post(
            "/api/tasks",
            json={"workflow": "quiet_tool@1", "input": "sleep quietly", "data": {"marker": str(marker)}},
            headers=auth,
        )
        assert r.status_code == 202, r.text
        task_id = r.json()["id"]
        deadline = asyncio.get_running_loop().time() + QUIET_SECONDS + 30
        status = ""
        while asyncio.get_running_loop().time() < deadline:
            status = (await api.get(f"/api/tasks/{task_id}", headers=auth)).json()["status"]
            if status in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.5)
    assert status == "completed"
    assert len(marker.read_text().splitlines()) == 1  # no heartbeat timeout, no second run
