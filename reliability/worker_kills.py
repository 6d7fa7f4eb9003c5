"""The worker SIGKILLed N times while M refund tasks run: every task completes, no refund happens
twice, and after each kill every task in flight moves again soon after a worker is available."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reliability.stack import Stack

# The refund tool holds its activity open (heartbeating) for a second after its ledger write, so
# kills land inside tool activities too, not only between them.
SLOW_TOOL = {
    "FRONTDESK_CATALOG_SETTINGS": json.dumps({"orchestrator.demo.catalog": {"tool_delay_seconds": 1}})
}


async def first_event_after(stack: Stack, workflow_id: str, after: datetime) -> datetime | None:
    assert stack.client is not None
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    times = [e.event_time.ToDatetime(tzinfo=UTC) for e in history.events]
    return next((t for t in times if t > after), None)


async def run(
    *, kills: int, tasks: int, spacing: float = 20.0, seed: int = 11, worker_code: Path | None = None
) -> dict[str, Any]:
    rng = random.Random(seed)
    stack = Stack(worker_env=dict(SLOW_TOOL), worker_code=worker_code)
    try:
        await stack.start()
        orders = stack.add_orders(tasks)
        waves = [orders[i::kills] for i in range(kills)]
        ids: list[str] = []
        kill_log: list[tuple[datetime, datetime, list[str]]] = []
        for wave in waves:
            ids += await stack.submit_refunds(wave)
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            statuses = await stack.workflow_statuses(ids)
            in_flight = [i for i, s in statuses.items() if s == "running"]
            killed_at = datetime.now(UTC)
            stack.kill_worker()
            await stack.start_worker()
            kill_log.append((killed_at, datetime.now(UTC), in_flight))
            await asyncio.sleep(spacing)
        ended = await stack.wait_ended(ids, 300)
        ledger = await stack.unrecorded_requests(ids)
        refunds = stack.refunds_per_task(ids)
        rows = stack.task_rows(ids)
        stalls: list[float] = []
        for _killed_at, ready_at, in_flight in kill_log:
            for task_id in in_flight:
                moved = await first_event_after(stack, rows[task_id].workflow_id, ready_at)
                if moved is not None:
                    stalls.append(max(0.0, (moved - ready_at).total_seconds()))
        return {
            "kills": kills,
            "tasks": tasks,
            "completed": sum(1 for s in ended.values() if s == "completed"),
            "not_completed": {i: s for i, s in ended.items() if s != "completed"},
            "duplicate_refunds": sum(max(0, n - 1) for n in refunds.values()),
            "tasks_in_flight_at_kills": sum(len(f) for _, _, f in kill_log),
            "longest_stall_after_worker_ready_s": round(max(stalls, default=0.0), 1),
            "model_requests": ledger,
            "logs": str(stack.root / "logs"),
        }
    finally:
        await stack.stop()
