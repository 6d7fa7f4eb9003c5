"""A worker killed with SIGKILL mid-task: after a restart the task completes, no side effect twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from repo_paths import REPO_ROOT
from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import RefundLedger
from orchestrator.demo.devstack.processes import ManagedProcess

pytestmark = pytest.mark.slow


class WorkerProcess:
    """`frontdesk worker` as a real child process, configured like the test's stack."""

    def __init__(self, stack: Any, log_dir: Path, **settings: Any) -> None:
        s = stack.settings
        env = {
            **os.environ,
            "FRONTDESK_DATABASE_URL": s.database_url,
            "FRONTDESK_TASK_QUEUE": s.task_queue,
            "FRONTDESK_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
            "FRONTDESK_ROUTER_URL": s.router_url,
            "FRONTDESK_ROUTER_API_KEY": s.router_api_key,
            "FRONTDESK_ROUTER_BACKOFF_SECONDS": "0.05",
            "FRONTDESK_STATE_DIR": str(s.state_dir),
            "FRONTDESK_CATALOG_PACKAGES": json.dumps(s.catalog_packages),
        }
        env.update(
            {
                f"FRONTDESK_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
                for k, v in settings.items()
            }
        )
        self.count = 0
        self.env, self.log_dir = env, log_dir
        self.proc: ManagedProcess | None = None

    def start(self) -> None:
        self.count += 1
        log = self.log_dir / f"worker-{self.count}.log"
        self.proc = ManagedProcess(
            name=f"worker-{self.count}",
            argv=[sys.executable, "-m", "orchestrator.cli.main", "worker"],
            log_path=log,
            env=self.env,
            cwd=REPO_ROOT,
            ready_check=lambda: log.exists() and "worker polling" in log.read_text(),
            ready_timeout=60,
        )
        self.proc.start()

    def kill(self) -> None:
        assert self.proc is not None and self.proc.pid is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.stop()  # reaps it

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture
def worker_factory(api_only: Any, tmp_path: Path) -> Iterator[Any]:
    workers: list[WorkerProcess] = []

    def make(**settings: Any) -> WorkerProcess:
        w = WorkerProcess(api_only, tmp_path, **settings)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()


def ledger(stack: Any, order_id: str) -> list[RefundLedger]:
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(RefundLedger).where(RefundLedger.order_id == order_id)))


async def test_worker_killed_while_waiting_at_checkpoint(api_only: Any, worker_factory: Any) -> None:
    stack = api_only
    worker = worker_factory()
    worker.start()
    order = stack.make_order("600.00")
    task = await stack.submit(f"Refund 200 EUR on order {order}, wrong size delivered.")
    cp = await stack.open_checkpoint(task["id"])

    worker.kill()
    worker.start()  # a fresh process replays the history and waits at the same checkpoint

    r = await stack.decide(cp["id"], "approve")
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    assert [row.amount for row in ledger(stack, order)] == [Decimal("200.00")]
    assert len(done["checkpoints"]) == 1


async def test_worker_killed_while_tool_activity_runs(api_only: Any, worker_factory: Any) -> None:
    stack = api_only
    # The refund tool commits its ledger row, then holds the activity open for 30 s:
    # the kill lands after the side effect and before the activity completes.
    first = worker_factory(catalog_settings={"orchestrator.demo.catalog": {"tool_delay_seconds": 30}})
    first.start()
    order = stack.make_order("90.00")
    task = await stack.submit(f"Refund 60 EUR on order {order}, parcel lost.")

    for _ in range(600):
        if ledger(stack, order):
            break
        await asyncio.sleep(0.1)
    assert len(ledger(stack, order)) == 1
    first.kill()

    second = worker_factory()
    second.start()
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, timeout=90)
    assert done["status"] == "completed", done["error"]
    assert len(ledger(stack, order)) == 1  # the retried activity found its key and refunded nothing more
    refund = next(t for t in done["tool_calls"] if t["tool"] == "issue_refund")
    assert refund["status"] == "succeeded"
    assert refund["result"]["replayed"] is True  # proves the activity really ran a second time
