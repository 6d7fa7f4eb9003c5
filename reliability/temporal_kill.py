"""The Temporal dev server SIGKILLed N times while M refund tasks run, and started again on the
same port and database file after each kill. Every task completes, no refund happens twice, every
audit chain verifies, and the worker and the API reconnect by themselves: after each restart every
task that was in flight moves again, and the API accepts the next wave of tasks."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType

from reliability.stack import Stack
from reliability.worker_kills import SLOW_TOOL

_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
}

# Events only a worker writes: the workflow moved because a worker picked it up again.
_WORKER_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
}


async def first_worker_event_after(stack: Stack, workflow_id: str, after: datetime) -> datetime | str | None:
    """When a worker first moved the workflow after `after` (the kill: the worker may get through
    before the server's readiness probe passes); "closed" when its history ended before (it finished
    between the in-flight snapshot and the kill); None if it never moved."""
    assert stack.client is not None
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if at > after and event.event_type in _WORKER_EVENTS:
            return at
    last = history.events[-1] if history.events else None
    if last is not None and last.event_type in _CLOSED and last.event_time.ToDatetime(tzinfo=UTC) <= after:
        return "closed"
    return None


async def run(
    *,
    kills: int,
    tasks: int,
    down: float = 3.0,
    spacing: float = 20.0,
    seed: int = 12,
    worker_code: Path | None = None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    stack = Stack(worker_env=dict(SLOW_TOOL), worker_code=worker_code)
    try:
        await stack.start()
        worker_pid = stack.procs["worker"].pid
        api_pid = stack.procs["api"].pid
        orders = stack.add_orders(tasks)
        # 2 batches per kill: one submitted just before it (in flight when Temporal dies), one
        # right after the restart through the same API process (its client must have reconnected).
        batches = [orders[i :: 2 * kills] for i in range(2 * kills)]
        ids: list[str] = []
        kill_log: list[dict[str, Any]] = []
        api_after_restart: list[float] = []
        api_refusals = 0
        for k in range(kills):
            await asyncio.sleep(spacing if k else 0.0)
            ids += await stack.submit_refunds(batches[2 * k])
            await asyncio.sleep(rng.uniform(0.5, 1.5))  # a refund task takes about 2-3 s here
            statuses = await stack.workflow_statuses(ids)
            in_flight = [i for i, s in statuses.items() if s == "running"]
            killed, killed_at = time.monotonic(), datetime.now(UTC)
            stack.kill_temporal()
            await asyncio.sleep(down)
            await stack.start_temporal()
            ready_at = datetime.now(UTC)
            kill_log.append({"killed_at": killed_at, "ready_at": ready_at, "in_flight": in_flight,
                             "restart_s": round(time.monotonic() - killed, 1)})  # fmt: skip
            started = time.monotonic()
            while True:  # the wave goes in as soon as the API takes it (no sleep before trying)
                try:
                    ids += await stack.submit_refunds(batches[2 * k + 1])
                    break
                except httpx.HTTPError:
                    api_refusals += 1
                    if time.monotonic() - started > 60:
                        raise
                    await asyncio.sleep(0.5)
            api_after_restart.append(round(time.monotonic() - started, 2))
        ended = await stack.wait_ended(ids, 300)
        ledger = await stack.unrecorded_requests(ids)
        refunds = stack.refunds_per_task(ids)
        rows = stack.task_rows(ids)
        stalls: list[float] = []
        never_moved = 0
        closed_before_kill = 0
        for entry in kill_log:
            for task_id in entry["in_flight"]:
                moved = await first_worker_event_after(stack, rows[task_id].workflow_id, entry["killed_at"])
                if moved is None:
                    never_moved += 1
                elif moved == "closed":
                    closed_before_kill += 1
                elif isinstance(moved, datetime):
                    stalls.append(max(0.0, (moved - entry["ready_at"]).total_seconds()))
        chains = stack.audit_chains()
        return {
            "kills": kills,
            "tasks": tasks,
            "completed": sum(1 for s in ended.values() if s == "completed"),
            "not_completed": {i: s for i, s in ended.items() if s != "completed"},
            "duplicate_refunds": sum(max(0, n - 1) for n in refunds.values()),
            "audit_chains": chains,
            "audit_ok": bool(chains) and all(v.startswith("ok") for v in chains.values()),
            "tasks_in_flight_at_kills": sum(len(e["in_flight"]) for e in kill_log),
            "in_flight_never_moved": never_moved,
            "in_flight_closed_before_kill": closed_before_kill,
            "longest_stall_after_temporal_ready_s": round(max(stalls, default=0.0), 1),
            "restart_seconds": [e["restart_s"] for e in kill_log],
            "api_submit_after_restart_s": api_after_restart,
            "api_refusals_after_restart": api_refusals,
            "worker_same_process": stack.procs["worker"].pid == worker_pid and stack.procs["worker"].running,
            "api_same_process": stack.procs["api"].pid == api_pid and stack.procs["api"].running,
            "model_requests": ledger,
            "logs": str(stack.root / "logs"),
        }
    finally:
        await stack.stop()
