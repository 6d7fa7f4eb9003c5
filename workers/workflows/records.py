"""What the task workflow writes about itself: its status and its steps, numbered in order."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        RECORD_STEP,
        SET_TASK_STATUS,
        StepRecord,
        StepSpec,
        TaskStatus,
        TaskStatusUpdate,
        TaskWorkflowInput,
        TaskWorkflowResult,
    )
    from workers.workflows.support import RECORD_OPTS, StepStatus, call


class TaskRecords:
    """The task's rows: status changes, the final result, and one record per step (the index is
    shared by the definition's steps and the steps of a plan, so it lives here)."""

    def __init__(self, inp: TaskWorkflowInput) -> None:
        self._inp = inp
        self._step_index = 0

    def next_index(self) -> int:
        self._step_index += 1
        return self._step_index - 1

    async def set_status(self, status: TaskStatus) -> None:
        update = TaskStatusUpdate(task_id=self._inp.task_id, tenant_id=self._inp.tenant_id, status=status)
        await call(SET_TASK_STATUS, update, RECORD_OPTS)

    async def finish(self, result: TaskWorkflowResult) -> None:
        update = TaskStatusUpdate(
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            status=result.status,
            outcome=result.outcome,
            output=result.output,
            error=result.error,
        )
        await call(SET_TASK_STATUS, update, RECORD_OPTS)

    async def record_step(
        self,
        index: int,
        step: StepSpec,
        status: StepStatus,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        *,
        kind: str = "agent",
        rung: int | None = None,
        tier: str | None = None,
    ) -> None:
        record = StepRecord(
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            index=index,
            name=step.name,
            agent=step.agent or step.tool,
            status=status,
            output=output,
            error=error,
            kind=kind,
            rung=rung,
            tier=tier,
        )
        await call(RECORD_STEP, record, RECORD_OPTS)
