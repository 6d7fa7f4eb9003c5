"""The task workflow: runs the pinned steps of a workflow definition under governance.

TaskWorkflow holds every handler (run, the decide and reassign updates with their validators, the
switches-changed signal) and delegates to collaborators it builds from the task's input:

    TaskRecords   records.py      the task's status and its numbered step records
    Checkpoints   checkpoints.py  open a checkpoint, wait under its SLA; decide and reassign
    Governance    governance.py   switches and budgets before a model call; tool calls
    AgentRunner   agents.py       the agent step: a ladder of agent loops
    StepRunner    steps.py        one step of the definition: agent, tool, review or planner

Deterministic by construction: no I/O, clocks or randomness here; ids come from the task id and
the position in the loop, or `workflow.uuid4()`; time is `workflow.now()`.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        DECIDE_UPDATE_NAME,
        REASSIGN_UPDATE_NAME,
        SWITCHES_CHANGED_SIGNAL,
        TASK_WORKFLOW_NAME,
        DecisionRequest,
        DecisionResult,
        ReassignRequest,
        TaskWorkflowInput,
        TaskWorkflowResult,
    )
    from workers.workflows.support import Mode, StepOutcome, holds, reason_of

from workers.workflows.agents import AgentRunner
from workers.workflows.checkpoints import Checkpoints
from workers.workflows.governance import Governance
from workers.workflows.records import TaskRecords
from workers.workflows.steps import StepRunner


@workflow.defn(name=TASK_WORKFLOW_NAME)
class TaskWorkflow:
    @workflow.init
    def __init__(self, inp: TaskWorkflowInput) -> None:
        # Built before any handler can run, so an update or a signal finds its collaborator ready.
        self._inp = inp
        self._mode = Mode(combined=inp.round_trips)
        self._records = TaskRecords(inp, self._mode)
        self._checkpoints = Checkpoints(inp, self._mode)
        self._governance = Governance(inp, self._mode, self._records, self._checkpoints)
        agents = AgentRunner(inp, self._mode, self._governance, self._checkpoints)
        self._steps = StepRunner(inp, self._records, self._governance, self._checkpoints, agents)

    @workflow.run
    async def run(self, inp: TaskWorkflowInput) -> TaskWorkflowResult:
        """`inp` is the one `__init__` got (Temporal passes the input to both)."""
        try:
            await self._records.begin()
            result = await self._run_steps()
        except BaseException as exc:
            # A cancel surfaces as CancelledError, or as an ActivityError caused by one when it
            # lands on a pending activity; either way the task ends `cancelled`, never unknown.
            if is_cancelled_exception(exc):
                await self._records.finish(
                    TaskWorkflowResult(status="cancelled", error="cancelled on request")
                )
            raise
        await self._records.finish(result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _run_steps(self) -> TaskWorkflowResult:
        outputs: dict[str, Any] = {}
        last: dict[str, Any] | None = None
        escalated = False
        for step in self._inp.definition.steps:
            index = self._records.next_index()
            if not holds(step.when, outputs, self._inp):
                await self._records.record_step(index, step, "skipped", kind=step.kind)
                continue
            await self._records.record_step(index, step, "running", kind=step.kind)
            try:
                outcome = await self._steps.run(step, outputs, last)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                outcome = StepOutcome("failed", error=reason_of(err))
            await self._records.record_step(
                index, step, outcome.status, outcome.output, outcome.error,
                kind=step.kind, rung=outcome.rung, tier=outcome.tier,
            )  # fmt: skip
            escalated = escalated or outcome.escalated
            if outcome.status == "rejected":
                return TaskWorkflowResult(
                    status="rejected", outcome="unresolved", output=outcome.output, error=outcome.error
                )
            if outcome.status != "completed":
                reason = f"step {step.name!r} {outcome.status.replace('_', ' ')}: {outcome.error}"
                return TaskWorkflowResult(status="failed", outcome="unresolved", error=reason)
            outputs[step.name] = outcome.output
            last = outcome.output
        return TaskWorkflowResult(
            status="completed", outcome="escalated" if escalated else "resolved", output=last
        )

    # -- handlers: each delegates to the collaborator that owns the state -----------------------------
    @workflow.update(name=DECIDE_UPDATE_NAME)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        return await self._checkpoints.decide(req)

    @decide.validator
    def _validate_decide(self, req: DecisionRequest) -> None:
        self._checkpoints.check_decide(req)

    @workflow.update(name=REASSIGN_UPDATE_NAME)
    async def reassign(self, req: ReassignRequest) -> DecisionResult:
        return await self._checkpoints.reassign(req)

    @reassign.validator
    def _validate_reassign(self, req: ReassignRequest) -> None:
        self._checkpoints.check_reassign(req)

    @workflow.signal(name=SWITCHES_CHANGED_SIGNAL)
    def switches_changed(self) -> None:
        self._governance.switches_changed()
