"""PostgreSQL stopped under load: tasks are submitted, the private server is stopped at once (so
their first record activities meet a dead database) and started again after `outage` seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from reliability.postgres import PrivatePostgres
from reliability.stack import Stack


async def run(
    *, tasks: int, outage: float, limit: float | None, worker_code: Path | None = None, wait: float = 600
) -> dict[str, Any]:
    pg = PrivatePostgres()
    pg.create()
    env = {"FRONTDESK_INFRA_OUTAGE_MAX_SECONDS": str(limit)} if limit is not None else {}
    stack = Stack(database_url=pg.url, worker_code=worker_code, worker_env=env)
    try:
        await stack.start()
        ids = await stack.submit_refunds(stack.add_orders(tasks))
        stopped = time.monotonic()
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(outage)
        await asyncio.to_thread(pg.start)
        down = time.monotonic() - stopped
        ended = await stack.wait_ended(ids, wait)
        refunds = stack.refunds_per_task(ids)
        return {
            "tasks": tasks,
            "outage_seconds": round(down, 1),
            "limit_seconds": limit,
            "completed": sum(1 for s in ended.values() if s == "completed"),
            "failed": sum(1 for s in ended.values() if s != "completed"),
            "statuses": ended,
            "refunds": sum(refunds.values()),
            "duplicate_refunds": sum(max(0, n - 1) for n in refunds.values()),
            "logs": str(stack.root / "logs"),
        }
    finally:
        await stack.stop()
        pg.destroy()
