"""Activities that write the task's own records: status and steps."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy.engine import Engine
from sqlalchemy.orm import QueryableAttribute, load_only
from sqlmodel import Session, col, select
from temporalio.exceptions import ApplicationError

from orchestrator import audit, metrics, telemetry
from orchestrator.contracts import (
    RECORD_STEP,
    RECORD_TASK,
    SET_TASK_STATUS,
    TERMINAL_STATUSES,
    Ack,
    StepRecord,
    TaskRecordBatch,
    TaskStatusUpdate,
    failures,
)
from orchestrator.db import session_scope
from orchestrator.models import Checkpoint, ModelCall, Task, TaskStep, utcnow
from workers.activities import implements


class RecordActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @implements(SET_TASK_STATUS)
    async def set_status(self, update: TaskStatusUpdate) -> Ack:
        await asyncio.to_thread(self._set_status, update)
        await self._ended(update)
        return Ack()

    async def _ended(self, update: TaskStatusUpdate | None) -> None:
        """A task that ended: its `invoke_workflow` span and its outcome and cost metrics."""
        if update is None or update.status not in TERMINAL_STATUSES:
            return
        telemetry.end_workflow_span(update.task_id, update.status, update.outcome, update.error)
        if metrics.enabled():
            cost = await asyncio.to_thread(self._cost, update.task_id)
            metrics.record_task_end(update.status, update.outcome, cost)

    def _cost(self, task_id: str) -> float:
        with session_scope(self._engine) as session:
            rows = session.exec(select(col(ModelCall.cost_usd)).where(ModelCall.task_id == task_id)).all()
        return float(sum((Decimal(c) for c in rows), Decimal(0)))

    def _set_status(self, update: TaskStatusUpdate) -> None:
        with session_scope(self._engine) as session:
            write_status(session, update)

    @implements(RECORD_STEP)
    async def record_step(self, step: StepRecord) -> Ack:
        began = await asyncio.to_thread(self._record_step, step)
        _steps_ended([step], began)
        return Ack()

    def _record_step(self, step: StepRecord) -> dict[int, datetime | None]:
        with session_scope(self._engine) as session:
            return {step.index: write_step(session, step)}

    @implements(RECORD_TASK)
    async def record(self, batch: TaskRecordBatch) -> Ack:
        """Several records in one transaction (the task workflow runs it as a local activity)."""
        began = await asyncio.to_thread(self._record, batch)
        _steps_ended(batch.steps, began)
        await self._ended(batch.status)
        return Ack()

    def _record(self, batch: TaskRecordBatch) -> dict[int, datetime | None]:
        final = batch.status is not None and batch.status.status in TERMINAL_STATUSES
        began = {}
        with session_scope(self._engine) as session:
            if batch.status is not None and not final:
                write_status(session, batch.status)
            for step in batch.steps:
                began[step.index] = write_step(session, step)
            if batch.status is not None and final:
                write_status(session, batch.status)
        return began


def _steps_ended(steps: list[StepRecord], began: dict[int, datetime | None]) -> None:
    """Each agent step that ended: its `invoke_agent` span (the turns already hang under its id)."""
    if not telemetry.enabled():
        return
    for step in steps:
        if step.status != "running" and step.agent:
            extra: dict[str, str | int] = {"frontdesk.step.kind": step.kind}
            if step.rung is not None:
                extra["frontdesk.rung"] = step.rung
            if step.tier:
                extra["gen_ai.request.model"] = step.tier
            agent, _, version = step.agent.partition("@")
            if version:
                extra["gen_ai.agent.version"] = version
            telemetry.end_step_span(step.task_id, step.name, agent, began.get(step.index), step.status, **extra)


STATUS_COLUMNS = tuple(cast("QueryableAttribute[Any]", c) for c in (Task.id, Task.tenant_id, Task.status))


def write_status(session: Session, update: TaskStatusUpdate) -> None:
    """Idempotent: a retried write after the end was recorded changes nothing."""
    task = session.exec(
        select(Task)
        .options(load_only(*STATUS_COLUMNS))  # not the pinned definition, most of the row's bytes
        .where(Task.id == update.task_id, Task.tenant_id == update.tenant_id)
    ).first()
    if task is None:
        # The API commits the row before it starts the workflow; absence is a real fault.
        raise ApplicationError(f"task {update.task_id} has no row", type=failures.TASK_MISSING)
    if task.status in TERMINAL_STATUSES:
        return  # a retried activity after the end was recorded: nothing to do
    previous = task.status
    task.status = update.status
    task.updated_at = utcnow()
    if update.status in TERMINAL_STATUSES:
        task.outcome = update.outcome
        task.output_json = json.dumps(update.output) if update.output is not None else None
        task.error = update.error
        task.ended_at = utcnow()
        for cp in session.exec(
            select(Checkpoint).where(Checkpoint.task_id == task.id, Checkpoint.status == "open")
        ):
            cp.status = "cancelled"
            session.add(cp)
    session.add(task)
    if previous != update.status and update.status in ("running", *TERMINAL_STATUSES):
        action = "task.started" if update.status == "running" else "task.ended"
        audit.record(
            session,
            tenant_id=task.tenant_id,
            task_id=task.id,
            actor="workflow",
            action=action,
            subject=task.id,
            reason=update.error or update.status,
            data={"status": update.status, "outcome": update.outcome},
        )


def write_step(session: Session, step: StepRecord) -> datetime | None:
    """Create or update the step's row; return when the step started."""
    row = session.exec(
        select(TaskStep).where(TaskStep.task_id == step.task_id, TaskStep.index == step.index)
    ).first()
    if row is None:
        row = TaskStep(
            tenant_id=step.tenant_id,
            task_id=step.task_id,
            index=step.index,
            name=step.name,
            agent=step.agent,
            status=step.status,
        )
    row.status = step.status
    row.kind = step.kind
    row.rung = step.rung
    row.tier = step.tier
    row.output_json = json.dumps(step.output) if step.output is not None else None
    row.error = step.error
    if step.status != "running":
        row.ended_at = utcnow()
    session.add(row)
    return row.started_at
