"""The state every part of the task workflow shares, and the records it writes."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        Ack,
        CheckpointState,
        StepRecord,
        StepSpec,
        TaskStatusUpdate,
        TaskWorkflowInput,
        TaskWorkflowResult,
    )
    from workers.workflows.support import (
        RECORD_OPTS,
    )


class TaskState:
    """Fields and record-keeping shared by the task workflow's parts (see task.py)."""

    def __init__(self) -> None:
        self._inp: TaskWorkflowInput | None = None
        self._checkpoints: dict[str, CheckpointState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._switch_epoch = 0
        self._turns = 0
        self._step_index = 0

    @property
    def inp(self) -> TaskWorkflowInput:
        assert self._inp is not None
        return self._inp

    # -- records ------------------------------------------------------------------------------------
    async def _status(self, status: str) -> None:
        await workflow.execute_activity(
            "task.set_status",
            TaskStatusUpdate(task_id=self.inp.task_id, tenant_id=self.inp.tenant_id, status=status),  # type: ignore[arg-type]
            result_type=Ack,
            **RECORD_OPTS,
        )

    async def _finish(self, result: TaskWorkflowResult) -> None:
        await workflow.execute_activity(
            "task.set_status",
            TaskStatusUpdate(
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                status=result.status,
                outcome=result.outcome,
                output=result.output,
                error=result.error,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )

    async def _record_step(
        self,
        index: int,
        step: StepSpec,
        status: str,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        *,
        kind: str = "agent",
        rung: int | None = None,
        tier: str | None = None,
    ) -> None:
        await workflow.execute_activity(
            "task.record_step",
            StepRecord(
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                index=index,
                name=step.name,
                agent=step.agent or step.tool,
                status=status,  # type: ignore[arg-type]
                output=output,
                error=error,
                kind=kind,
                rung=rung,
                tier=tier,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )
