"""The steps of a workflow definition: agent, tool, checkpoint (a person reviews) and planner."""

from __future__ import annotations

import json
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        VALIDATE_PLAN,
        AgentSpec,
        ApprovalSpec,
        Plan,
        StepSpec,
        TaskWorkflowInput,
        ToolCallRequest,
        ValidatePlanInput,
    )
    from workers.workflows.support import (
        RECORD_OPTS,
        REPAIR_PREFIX,
        StepOutcome,
        call,
        refusal,
        render,
    )

from workers.workflows.agents import AgentRunner
from workers.workflows.checkpoints import Checkpoints
from workers.workflows.governance import Governance
from workers.workflows.records import TaskRecords


class StepRunner:
    """Runs one step of the definition (`run`) with the collaborators the workflow built: agent
    steps through `agents`, tool calls through `governance`, reviews through `checkpoints`, and the
    steps of a plan recorded through `records`."""

    def __init__(
        self,
        inp: TaskWorkflowInput,
        records: TaskRecords,
        governance: Governance,
        checkpoints: Checkpoints,
        agents: AgentRunner,
    ) -> None:
        self._inp = inp
        self._records = records
        self._governance = governance
        self._checkpoints = checkpoints
        self._agents = agents

    async def run(self, step: StepSpec, outputs: dict[str, Any], last: dict[str, Any] | None) -> StepOutcome:
        """`outputs`: every earlier step's output by name; `last`: the previous step's."""
        if step.kind == "agent":
            return await self._agents.run(step.name, self._inp.definition.agents[step.agent], outputs)
        if step.kind == "tool":
            return await self._tool_step(step, outputs)
        if step.kind == "checkpoint":
            return await self._review_step(step, last)
        return await self._planner_step(step, outputs)

    async def _tool_step(self, step: StepSpec, outputs: dict[str, Any]) -> StepOutcome:
        """A tool the definition calls itself, authorized like any tool call (agent `workflow:<name>`)."""
        name = step.tool.partition("@")[0]
        args = render(step.args, outputs, self._inp)
        caller = AgentSpec(
            name=f"workflow:{self._inp.definition.name}",
            version=self._inp.definition.version,
            instructions="",
            tier="",
            tools=[step.tool],
            output_model="",
            output_schema={},
        )
        request = ToolCallRequest(
            id=f"step-{step.name}", name=name, arguments=json.dumps(args, sort_keys=True)
        )
        content, rejected = await self._governance.tool_call(
            caller, step.name, f"{step.name}:0", 0, 0, request
        )
        result = json.loads(content)
        if rejected:
            return StepOutcome("rejected", output=result, error=rejected)
        if result.get("status") in ("denied", "failed", "changes_requested"):
            why = result.get("error") or result.get("comment") or result["status"]
            return StepOutcome("failed", output=result, error=f"tool {step.tool} did not run: {why}")
        return StepOutcome("completed", output=result)

    async def _review_step(self, step: StepSpec, last: dict[str, Any] | None) -> StepOutcome:
        """A person reviews the previous step's output before the task goes on."""
        state = await self._checkpoints.ask(
            kind=step.review,
            step=step.name,
            subject=f"review:{step.name}",
            args={"output": last},
            digest="",
            policy_version="",
            rule=f"workflow:{self._inp.definition.ref}",
            reason=f"the workflow asks a person ({step.assignee_role}) to review before it goes on",
            approval=ApprovalSpec(rule_id=f"review-{step.name}", assignee_role=step.assignee_role),
        )
        if state.status == "approved":
            return StepOutcome("completed", output=last)
        return StepOutcome(
            "rejected",
            output=last,
            error=refusal(
                f"the {step.review.replace('_', ' ')}", state.status, state.decided_by, state.comment
            ),
        )

    async def _planner_step(self, step: StepSpec, outputs: dict[str, Any]) -> StepOutcome:
        """The planner proposes a plan of registered agents; it is validated (one repair turn),
        optionally reviewed by a person, then run step by step."""
        definition = self._inp.definition
        planner = definition.agents[step.agent]
        note: str | None = None
        plan: Plan | None = None
        for attempt in (1, 2):
            name = step.name if attempt == 1 else f"{step.name}/repair"
            proposed = await self._agents.run(name, planner, outputs, note=note)
            if proposed.status != "completed":
                return proposed
            proposal = ValidatePlanInput(
                tenant_id=self._inp.tenant_id,
                plan=proposed.output or {},
                planner_agents=step.planner_agents,
                agents={
                    ref.split("@", 1)[0]: definition.agents[ref]
                    for ref in step.planner_agents
                    if ref in definition.agents
                },
            )
            checked = await call(VALIDATE_PLAN, proposal, RECORD_OPTS)
            if checked.ok:
                plan = checked.plan
                break
            note = (
                f"{REPAIR_PREFIX}: the plan was refused: {'; '.join(checked.problems)}. Propose a valid plan."
            )
        if plan is None:
            return StepOutcome("failed", error=f"the plan was refused after one repair turn: {note}")
        if step.require_plan_review:
            review = await self._review_step(
                StepSpec(
                    name=f"{step.name}.review",
                    kind="checkpoint",
                    review="plan_review",
                    assignee_role=step.assignee_role,
                ),
                plan.model_dump(),
            )
            if review.status != "completed":
                return review
        return await self._run_plan(step, plan, outputs)

    async def _run_plan(self, step: StepSpec, plan: Plan, outputs: dict[str, Any]) -> StepOutcome:
        results: dict[str, Any] = {}
        last: dict[str, Any] | None = None
        for planned in plan.steps:
            name = f"{step.name}.{planned.name}"
            index = self._records.next_index()
            sub = StepSpec(name=name, agent=planned.agent)
            await self._records.record_step(index, sub, "running")
            agent = self._inp.definition.agents[planned.agent]
            outcome = await self._agents.run(
                name, agent, {**outputs, **results}, assignment=planned.instructions
            )
            await self._records.record_step(
                index,
                sub,
                outcome.status,
                outcome.output,
                outcome.error,
                rung=outcome.rung,
                tier=outcome.tier,
            )
            if outcome.status != "completed":
                return outcome
            results[planned.name] = outcome.output
            last = outcome.output
        return StepOutcome("completed", output={"plan": plan.model_dump(), "results": results, "final": last})
