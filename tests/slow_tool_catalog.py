"""A test catalog with one slow tool, for the worker's graceful shutdown
(tests/integration/test_worker_shutdown.py): the tool writes `<marker>.started`, works for
SLOW_SECONDS (heartbeating), then writes `<marker>.finished`. Its workflow is that one tool step,
so no model or router is involved."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.catalog.api import CatalogModule, ToolContext, tool_step

SLOW_SECONDS = 6
POLICY_RULE = "p, all-tenants, workflow:slow_shutdown, slow_sleep, True, allow, slow-sleep-test"


class SleepArgs(BaseModel):
    marker: str


catalog = CatalogModule()


@catalog.tool(side_effect="read")
async def slow_sleep(args: SleepArgs, ctx: ToolContext) -> dict[str, Any]:
    """Take SLOW_SECONDS, leaving a trace of having started and of having finished."""
    Path(args.marker + ".started").write_text(ctx.idempotency_key)
    for _ in range(SLOW_SECONDS):
        await asyncio.sleep(1)
        ctx.heartbeat()
    Path(args.marker + ".finished").write_text(ctx.idempotency_key)
    return {"slept": SLOW_SECONDS}


catalog.workflow(
    "slow_shutdown",
    "1",
    description="One slow tool step (tests of the worker's graceful shutdown).",
    examples=["sleep a while", "take your time"],
    steps=[tool_step("sleep", slow_sleep, {"marker": "{input.marker}"})],
)

register = catalog.register
