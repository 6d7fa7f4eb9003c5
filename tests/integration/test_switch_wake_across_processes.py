"""A switch flipped in the API process wakes a paused task, whose worker (another process, with its
own switch cache) must then read the flip, not the answer it cached just before it.

Two SwitchService instances on one database stand for the API and the worker; a real Temporal
workflow with the task's workflow id receives the wake-up signal. When the signal lands, the
worker's check must already see the flip: otherwise the paused task goes back to sleep until its
next recheck (5 minutes, then longer).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from conftest import SeededDb
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from orchestrator.contracts import SWITCHES_CHANGED_SIGNAL
from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_tenant, ensure_user
from orchestrator.models import Task
from orchestrator.services.switches import SwitchService, wake_waiting_tasks

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


@workflow.defn(name="test-wake-listener", sandboxed=False)
class WakeListener:
    """Stands for a paused task: ends when it is told the switches changed."""

    def __init__(self) -> None:
        self.woken = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.woken)

    @workflow.signal(name=SWITCHES_CHANGED_SIGNAL)
    def switches_changed(self) -> None:
        self.woken = True


@pytest.fixture
def waiting_task(db: SeededDb) -> Iterator[Task]:
    """A task of its own tenant, waiting (what wake_waiting_tasks looks for)."""
    tenant = f"wake-{secrets.token_hex(4)}"
    with session_scope(db.engine) as s:
        ensure_tenant(s, tenant, "Wake test")
        user = ensure_user(s, tenant, f"req@{tenant}.example", "Req", ["requester"])
        task = Task(
            tenant_id=tenant,
            requester_id=user.id,
            workflow_name="none",
            workflow_version="1",
            input_text="paused",
            definition_json="{}",
            status="waiting",
        )
        s.add(task)
    yield task
    with session_scope(db.engine) as s:
        row = s.get(Task, task.id)
        if row is not None:
            row.status = "cancelled"


@BOTH
async def test_a_woken_task_reads_the_flip_in_another_process(
    db: SeededDb, temporal_env: WorkflowEnvironment, waiting_task: Task
) -> None:
    client: Client = temporal_env.client
    api = SwitchService(db.engine, cache_seconds=0.9)
    worker = SwitchService(db.engine, cache_seconds=0.9)  # the worker process's own cache
    tenant = waiting_task.tenant_id
    queue = f"wake-{secrets.token_hex(4)}"
    async with Worker(client, task_queue=queue, workflows=[WakeListener]):
        handle = await client.start_workflow(WakeListener.run, id=waiting_task.workflow_id, task_queue=queue)
        assert worker.check(tenant_id=tenant) is None  # the worker's cache is warm: no switch
        api.flip(scope="tenant", tenant_id=tenant, active=True, mode="pause", reason="incident", actor="ops")

        async def connect() -> Client:
            return client

        state = SimpleNamespace(engine=db.engine, temporal_client=connect)
        signalled, _ = await asyncio.gather(wake_waiting_tasks(state, tenant), handle.result())
        assert signalled == 1
        # The signal has landed: a check the woken task makes now, in the worker, sees the pause.
        hit = worker.check(tenant_id=tenant)
        assert hit is not None and hit.mode == "pause", "the woken task read the switch cached before the flip"
