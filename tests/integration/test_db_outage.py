"""A database outage is waited out for FRONTDESK_INFRA_OUTAGE_MAX_SECONDS, then fails the task.

Real processes (Temporal, demo model, LiteLLM, worker, API) on a private PostgreSQL server that
this test stops and starts; the shared server on 5432 is never touched. The same 35 s outage
fails a task under a 15 s limit (a stand-in for the old fixed bound of 20 attempts, ~165 s, too
long to wait for here) and is ridden out under a 120 s limit: the bound is the setting's.
"""

from __future__ import annotations

import asyncio
import glob
import shutil
from typing import Any

import pytest
from repo_paths import REPO_ROOT
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from orchestrator.contracts import failures

pytestmark = [pytest.mark.slow, pytest.mark.router, pytest.mark.timeout(600)]

OUTAGE = 35.0


@pytest.fixture
def reliability(monkeypatch: pytest.MonkeyPatch) -> Any:
    if not shutil.which("runuser") or not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("needs PostgreSQL's initdb and pg_ctl to run a private server")
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from reliability import postgres, stack

    return postgres, stack


async def outage(pg: Any) -> None:
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(OUTAGE)
    await asyncio.to_thread(pg.start)


async def test_an_outage_longer_than_the_limit_fails_and_a_shorter_one_is_waited_out(
    reliability: Any,
) -> None:
    postgres, stack_module = reliability
    pg = postgres.PrivatePostgres()
    pg.create()
    stack = stack_module.Stack(database_url=pg.url, worker_env={"FRONTDESK_INFRA_OUTAGE_MAX_SECONDS": "15"})
    try:
        await stack.start()

        # 1. Limit 15 s, outage 35 s: the task fails, and says why.
        [doomed] = await stack.submit_refunds(stack.add_orders(1))
        await outage(pg)
        workflow_id = stack.task_rows([doomed])[doomed].workflow_id
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(stack.client.get_workflow_handle(workflow_id).result(), 120)
        # The activity that gave up: a scheduled one (ActivityError around the reason) or the
        # local activity that writes the task's records (the reason itself).
        cause = failed.value.cause
        reason = cause.cause if isinstance(cause, ActivityError) else cause
        assert isinstance(reason, ApplicationError), cause
        assert reason.type == failures.INFRA_UNAVAILABLE and reason.non_retryable
        assert "FRONTDESK_INFRA_OUTAGE_MAX_SECONDS" in reason.message

        # 2. Limit 120 s, the same outage: every task completes, each refund once.
        stack.kill_worker()
        stack.worker_env["FRONTDESK_INFRA_OUTAGE_MAX_SECONDS"] = "120"
        await stack.start_worker()
        ids = await stack.submit_refunds(stack.add_orders(2))
        await outage(pg)
        ended = await stack.wait_ended(ids, 180)
        assert ended == dict.fromkeys(ids, "completed"), ended
        assert stack.refunds_per_task(ids) == dict.fromkeys(ids, 1)
    finally:
        await stack.stop()
        pg.destroy()
