"""The floor workflow: the refund agent's loop on bare temporalio.

model call -> for each tool call: `lookup_order` runs at once; `issue_refund` first waits for one
approval (a Temporal update, with a validator) -> the tool's result goes back to the model, until a
final answer, which is checked against the refund decision model in the workflow itself.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from bench.floor import AWAITING_QUERY, DECIDE_UPDATE, WORKFLOW_NAME
    from bench.floor.prompts import MAX_TURNS, SYSTEM_PROMPT
    from bench.floor.types import Decision, FloorInput, FloorResult, ModelCallIn, ToolIn
    from orchestrator.demo.catalog.models import RefundDecision

MODEL_TIMEOUT = timedelta(minutes=5)
TOOL_TIMEOUT = timedelta(minutes=2)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))
TOOL_ACTIVITIES = {"lookup_order": "floor.lookup_order", "issue_refund": "floor.issue_refund"}
NEEDS_APPROVAL = {"issue_refund"}


@workflow.defn(name=WORKFLOW_NAME)
class FloorRefund:
    def __init__(self) -> None:
        self._awaiting = False
        self._decision: Decision | None = None

    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": inp.text},
        ]
        results: list[dict[str, Any]] = []
        for turn in range(1, MAX_TURNS + 1):
            reply: dict[str, Any] = await workflow.execute_activity(
                "floor.model_call",
                ModelCallIn(inp.tenant_id, f"{inp.task_id}/{turn}", messages),
                result_type=dict,
                start_to_close_timeout=MODEL_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            messages.append(reply)
            calls = reply.get("tool_calls") or []
            if not calls:
                try:
                    decision = RefundDecision.model_validate_json(reply.get("content") or "")
                except ValidationError as exc:
                    return FloorResult(None, turn, results, error=str(exc))
                return FloorResult(decision.model_dump(mode="json"), turn, results)
            for index, call in enumerate(calls):
                result = await self._tool(inp, turn, index, call["function"])
                results.append(result)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
        return FloorResult(None, MAX_TURNS, results, error="no final answer")

    async def _tool(self, inp: FloorInput, turn: int, index: int, fn: dict[str, str]) -> dict[str, Any]:
        name = fn["name"]
        if name not in TOOL_ACTIVITIES:
            return {"error": f"tool {name} is not available here"}
        if name in NEEDS_APPROVAL:
            self._awaiting = True
            await workflow.wait_condition(lambda: self._decision is not None)
            self._awaiting = False
            assert self._decision is not None
            if not self._decision.approve:
                return {"status": "rejected", "comment": self._decision.comment}
        key = f"{workflow.info().workflow_id}:{turn}:{index}"
        result: dict[str, Any] = await workflow.execute_activity(
            TOOL_ACTIVITIES[name],
            ToolIn(inp.tenant_id, inp.task_id, key, fn["arguments"]),
            result_type=dict,
            start_to_close_timeout=TOOL_TIMEOUT,
            retry_policy=RETRY,
        )
        return result

    @workflow.query(name=AWAITING_QUERY)
    def awaiting(self) -> bool:
        return self._awaiting and self._decision is None

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, decision: Decision) -> str:
        self._decision = decision
        return "approved" if decision.approve else "rejected"

    @decide.validator
    def _validate(self, decision: Decision) -> None:
        if not self._awaiting or self._decision is not None:
            raise ValueError("no approval is open")
