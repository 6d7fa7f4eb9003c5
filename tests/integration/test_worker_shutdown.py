"""`frontdesk worker` as a real process on the Temporal dev server: SIGTERM while an activity runs.

The worker stops polling, lets the activity finish within its grace period, stops the
notification dispatcher and exits 0; the activity's completion is in the workflow history (it is
not retried elsewhere), and another worker finishes the task from there. The worker also reports
its build id (FRONTDESK_WORKER_BUILD_ID) with its pollers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SeededDb, stack_settings
from repo_paths import REPO_ROOT, SHIPPED_POLICIES
from slow_tool_catalog import POLICY_RULE
from temporalio.api.enums.v1 import EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.testing import WorkflowEnvironment

from orchestrator.app import build_state, create_app
from orchestrator.settings import Settings
from workers.worker import build_router, build_worker

pytestmark = pytest.mark.slow
BUILD_ID = "test-build-2024.06-abc123"
GRACE_SECONDS = 60  # far longer than the slow tool: the activity must finish, not be cancelled


@pytest.fixture
def settings(sqlite_db: SeededDb, tmp_path: Path) -> Settings:
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICIES, policies)
    with (policies / "tool_policy.csv").open("a") as f:
        f.write(POLICY_RULE + "\n")
    return stack_settings(
        sqlite_db,
        "http://127.0.0.1:9",  # no model call in this workflow: the router is never asked
        tmp_path,
        catalog_packages=["slow_tool_catalog"],
        policies_dir=policies,
    )


@pytest.fixture
async def api(settings: Settings, sqlite_db: SeededDb, temporal_env: WorkflowEnvironment) -> AsyncIterator[Any]:
    app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine, temporal=temporal_env.client))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as client:
        yield client


@pytest.fixture
def worker_process(settings: Settings, temporal_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[Any]:
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
        "FRONTDESK_DATABASE_URL": settings.database_url,
        "FRONTDESK_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "FRONTDESK_TASK_QUEUE": settings.task_queue,
        "FRONTDESK_CATALOG_PACKAGES": json.dumps(settings.catalog_packages),
        "FRONTDESK_POLICIES_DIR": str(settings.policies_dir),
        "FRONTDESK_STATE_DIR": str(tmp_path),
        "FRONTDESK_ROUTER_URL": settings.router_url,
        "FRONTDESK_WORKER_BUILD_ID": BUILD_ID,
        "FRONTDESK_WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "FRONTDESK_NOTIFY_POLL_SECONDS": "0.2",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli.main", "worker"],
            env=env,
            cwd=tmp_path,  # no .env from anywhere else
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.log = log  # type: ignore[attr-defined]  # the test reads the worker's log
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.1)


async def test_sigterm_lets_the_running_activity_finish_then_exits_0(
    api: httpx.AsyncClient,
    sqlite_db: SeededDb,
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    worker_process: Any,
    tmp_path: Path,
) -> None:
    log: Path = worker_process.log
    await until(lambda: "worker polling" in log.read_text() or worker_process.poll() is not None, "worker start")
    assert worker_process.poll() is None, log.read_text()

    marker = tmp_path / "slow"
    r = await api.post(
        "/api/tasks",
        json={"workflow": "slow_shutdown@1", "input": "take your time", "data": {"marker": str(marker)}},
        headers={"Authorization": f"Bearer {sqlite_db.tokens['riley']}"},
    )
    assert r.status_code == 202, r.text
    task_id = r.json()["id"]
    started, finished = Path(f"{marker}.started"), Path(f"{marker}.finished")
    await until(started.exists, "the slow activity to start")

    # The worker says which build it is (a rollout can be told apart), routing unchanged.
    queue = await temporal_env.client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=settings.task_queue))
    )
    assert {p.deployment_options.build_id for p in queue.pollers} == {BUILD_ID}
    assert {p.deployment_options.deployment_name for p in queue.pollers} == {settings.task_queue}

    assert not finished.exists(), "the activity ended before the signal: make the tool slower"
    worker_process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker_process.wait, GRACE_SECONDS + 30)
    output = log.read_text()
    assert code == 0, output
    assert finished.exists(), output  # it ran to its end, not cancelled
    assert "SIGTERM: worker stops polling; running activities get 60 s to finish" in output
    assert "notification dispatcher stopped" in output and "worker stopped" in output
    assert "Traceback" not in output

    # Temporal recorded the activity as completed on its first attempt: nothing to retry.
    handle = temporal_env.client.get_workflow_handle(f"task-{task_id}")
    history = await handle.fetch_history()
    events = {e.event_id: e for e in history.events}
    tool_runs = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and _runs_slow_sleep(e.activity_task_scheduled_event_attributes)
    ]
    assert len(tool_runs) == 1
    completed = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id == tool_runs[0].event_id
    ]
    assert len(completed) == 1
    started_event = events[completed[0].activity_task_completed_event_attributes.started_event_id]
    assert started_event.activity_task_started_event_attributes.attempt == 1

    # Another worker picks the task up from there and completes it.
    async with build_router(settings) as router, build_worker(
        temporal_env.client, settings, engine=sqlite_db.engine, router=router
    ):
        await asyncio.wait_for(handle.result(), 60)
    r = await api.get(f"/api/tasks/{task_id}", headers={"Authorization": f"Bearer {sqlite_db.tokens['riley']}"})
    assert r.json()["status"] == "completed", r.text
    assert started.read_text() == finished.read_text()  # one run, one idempotency key


def _runs_slow_sleep(scheduled: Any) -> bool:
    """The activity that runs the slow tool: `tool.step` with it in its input (a task started on
    the combined round trips), or the tool's own activity (a task from before)."""
    if "slow_sleep" in scheduled.activity_type.name:
        return True
    return scheduled.activity_type.name == "tool.step" and any(
        b"slow_sleep" in p.data for p in scheduled.input.payloads
    )
