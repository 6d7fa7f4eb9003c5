"""What the task workflow writes about itself: its status and its steps, numbered in order."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        RECORD_STEP,
        RECORD_TASK,
        SET_TASK_STATUS,
        StepRecord,
        StepSpec,
        TaskRecordBatch,
        TaskStatus,
        TaskStatusUpdate,
        TaskWorkflowInput,
        TaskWorkflowResult,
    )
    from workers.workflows.support import LOCAL_RECORD_OPTS, RECORD_OPTS, Mode, StepStatus, call


class TaskRecords:
    """The task's rows: status changes, the final result, and one record per step (the index is
    shared by the definition's steps and the steps of a plan, so it lives here).

    On the combined path, writes that nothing waits on are held and go with the next one, in one
    local activity: the start (`begin`) goes with the first step's record, a step's end with the
    next step's start or the task's end. A held write never waits across an activity or a timer:
    the next write always follows it in the same workflow task."""

    def __init__(self, inp: TaskWorkflowInput, mode: Mode) -> None:
        self._inp = inp
        self._mode = mode
        self._step_index = 0
        self._held_status: TaskStatusUpdate | None = None
        self._held_steps: list[StepRecord] = []

    def next_index(self) -> int:
        self._step_index += 1
        return self._step_index - 1

    async def begin(self) -> None:
        """The task runs: written with the first step's record on the combined path."""
        update = self._status("running")
        if self._mode.combined:
            self._held_status = update
        else:
            await call(SET_TASK_STATUS, update, RECORD_OPTS)

    async def set_status(self, status: TaskStatus) -> None:
        await self._write(self._status(status))

    async def finish(self, result: TaskWorkflowResult) -> None:
        update = TaskStatusUpdate(
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            status=result.status,
            outcome=result.outcome,
            output=result.output,
            error=result.error,
        )
        await self._write(update)

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
        if not self._mode.combined:
            await call(RECORD_STEP, record, RECORD_OPTS)
        elif status == "running":  # work follows: the record must be there first
            self._held_steps.append(record)
            await self._flush()
        else:
            self._held_steps.append(record)

    def _status(self, status: TaskStatus) -> TaskStatusUpdate:
        return TaskStatusUpdate(task_id=self._inp.task_id, tenant_id=self._inp.tenant_id, status=status)

    async def _write(self, update: TaskStatusUpdate) -> None:
        if not self._mode.combined:
            await call(SET_TASK_STATUS, update, RECORD_OPTS)
            return
        if self._held_status is not None:  # only `begin` holds a status: it goes first
            await self._flush()
        self._held_status = update
        await self._flush()

    async def _flush(self) -> None:
        batch = TaskRecordBatch(status=self._held_status, steps=self._held_steps)
        self._held_status, self._held_steps = None, []
        if batch.status is not None or batch.steps:
            await call(RECORD_TASK, batch, LOCAL_RECORD_OPTS, local=True)
