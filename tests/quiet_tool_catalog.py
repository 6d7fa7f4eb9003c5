"""A test catalog with one tool that works for QUIET_SECONDS, longer than the tool activity's
heartbeat timeout, without ever calling `ctx.heartbeat` (tests/integration/test_tool_heartbeat.py).
Each run appends its idempotency key to `<marker>`, so a re-run shows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.catalog.api import CatalogModule, ToolContext, tool_step

QUIET_SECONDS = 13  # > TOOL_OPTS' 10 s heartbeat timeout
POLICY_RULE = "p, all-tenants, workflow:quiet_tool, quiet_sleep, True, allow, quiet-sleep-test"


class QuietArgs(BaseModel):
    marker: str


catalog = CatalogModule()


@catalog.tool(side_effect="read")
async def quiet_sleep(args: QuietArgs, ctx: ToolContext) -> dict[str, Any]:
    """Take QUIET_SECONDS without a heartbeat, leaving one line per run."""
    await asyncio.to_thread(_append, Path(args.marker), ctx.idempotency_key)
    await asyncio.sleep(QUIET_SECONDS)
    return {"slept": QUIET_SECONDS}


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")


catalog.workflow(
    "quiet_tool",
    "1",
    description="One tool step that never heartbeats (test of the worker's own heartbeat).",
    examples=["sleep quietly"],
    steps=[tool_step("sleep", quiet_sleep, {"marker": "{input.marker}"})],
)

register = catalog.register
