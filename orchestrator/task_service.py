"""Submitting, reading and cancelling tasks; deciding checkpoints. Used by the API (and the UI).

Every query is scoped to the caller's tenant; a task of another tenant, or one the caller may
not read, answers 404 so ids never leak across tenants.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from orchestrator import audit
from orchestrator.api.deps import Principal, can
from orchestrator.api.errors import ApiError, Conflict, Forbidden, NotFound, ServiceUnavailable
from orchestrator.api.schemas import CostSummary, TaskCreate
from orchestrator.api.state import AppState
from orchestrator.models import Checkpoint, ModelCall, Task, utcnow
from workers.catalog.registry import CatalogError
from workers.domain import (
    DECIDE_UPDATE_NAME,
    TASK_WORKFLOW_NAME,
    TERMINAL_STATUSES,
    DecisionRequest,
    DecisionResult,
    TaskWorkflowInput,
    WorkflowSpec,
)

log = logging.getLogger(__name__)


class UnprocessableRequest(ApiError):
    status, title = 422, "Invalid request"


def cost_of(session: Session, task_ids: list[str]) -> dict[str, CostSummary]:
    """A task's cost is the sum of all its router requests, failed attempts and retries included."""
    summary = {tid: CostSummary(total_usd=Decimal(0), estimated=False, model_calls=0) for tid in task_ids}
    if not task_ids:
        return summary
    # Summed in Decimal here, not in SQL: SQLite would add NUMERICs as floats.
    rows = session.exec(
        select(ModelCall.task_id, ModelCall.cost_usd, ModelCall.cost_estimated).where(
            ModelCall.task_id.in_(task_ids)  # type: ignore[attr-defined]
        )
    )
    for tid, cost, estimated in rows:
        entry = summary[tid]
        entry.total_usd += Decimal(cost)
        entry.model_calls += 1
        entry.estimated = entry.estimated or bool(estimated)
    return summary


def visible_task(session: Session, state: AppState, user: Principal, task_id: str) -> Task:
    task = session.exec(select(Task).where(Task.id == task_id, Task.tenant_id == user.tenant_id)).first()
    if task is None or not (
        can(state, user, "task", "read_all")
        or (task.requester_id == user.user_id and can(state, user, "task", "read_own"))
    ):
        raise NotFound(f"No task {task_id!r} in tenant {user.tenant_id!r}.")
    return task


def _pin(state: AppState, ref: str) -> WorkflowSpec:
    try:
        return state.catalog.pin(ref)
    except CatalogError as exc:
        raise UnprocessableRequest(f"{exc}.", title="Unknown workflow") from exc


async def submit(
    session: Session, state: AppState, user: Principal, body: TaskCreate, idempotency_key: str | None
) -> tuple[Task, bool]:
    """Create the task row, then start its workflow. Returns (task, created)."""
    spec = _pin(state, body.workflow)
    if idempotency_key is not None:
        existing = _by_key(session, user, idempotency_key)
        if existing is not None:
            return await _replay(session, state, existing, spec, body), False
    task = Task(
        tenant_id=user.tenant_id,
        requester_id=user.user_id,
        workflow_name=spec.name,
        workflow_version=spec.version,
        input_text=body.input,
        input_json=json.dumps(body.data, sort_keys=True),
        definition_json=spec.model_dump_json(),
        idempotency_key=idempotency_key,
    )
    session.add(task)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()  # a concurrent retry with the same key won the race
        existing = _by_key(session, user, idempotency_key or "")
        if existing is None:
            raise
        return await _replay(session, state, existing, spec, body), False
    audit.record(
        session,
        tenant_id=user.tenant_id,
        task_id=task.id,
        actor=f"user:{user.user_id}",
        action="task.submitted",
        subject=task.id,
        reason=f"workflow {spec.ref}",
        data={"workflow": spec.ref, "idempotency_key": idempotency_key},
    )
    session.commit()
    await _start(session, state, task, spec)
    return task, True


def _by_key(session: Session, user: Principal, key: str) -> Task | None:
    return session.exec(
        select(Task).where(
            Task.tenant_id == user.tenant_id, Task.requester_id == user.user_id, Task.idempotency_key == key
        )
    ).first()


async def _replay(
    session: Session, state: AppState, task: Task, spec: WorkflowSpec, body: TaskCreate
) -> Task:
    same = (
        task.workflow_name == spec.name
        and task.input_text == body.input
        and json.loads(task.input_json) == body.data
    )
    if not same:
        raise Conflict("This Idempotency-Key was already used for a different request; use a new key.")
    if task.status == "queued":  # the first attempt may have died before the start: finish it
        await _start(session, state, task, WorkflowSpec.model_validate_json(task.definition_json))
    return task


async def _start(session: Session, state: AppState, task: Task, spec: WorkflowSpec) -> None:
    inp = TaskWorkflowInput(
        task_id=task.id,
        tenant_id=task.tenant_id,
        requester_id=task.requester_id,
        definition=spec,
        input_text=task.input_text,
        input_data=json.loads(task.input_json),
    )
    try:
        client = await state.temporal_client()
        await client.start_workflow(
            TASK_WORKFLOW_NAME,
            inp,
            id=task.workflow_id,
            task_queue=state.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except (RPCError, ServiceUnavailable) as exc:
        # Never leave the task in an unknown state: it is failed, with the reason.
        log.warning("could not start workflow for %s: %s", task.id, exc)
        task.status, task.error, task.ended_at = "failed", f"could not start the workflow: {exc}", utcnow()
        session.add(task)
        audit.record(
            session,
            tenant_id=task.tenant_id,
            task_id=task.id,
            actor="api",
            action="task.ended",
            subject=task.id,
            reason=task.error,
        )
        session.commit()
        raise ServiceUnavailable(
            f"Task {task.id} could not be started: Temporal is unavailable. It is marked failed."
        ) from exc


async def cancel(session: Session, state: AppState, user: Principal, task_id: str) -> Task:
    task = visible_task(session, state, user, task_id)
    own = task.requester_id == user.user_id and can(state, user, "task", "cancel_own")
    if not (own or can(state, user, "task", "cancel_any")):
        raise Forbidden("You may cancel only your own tasks.")
    if task.status in TERMINAL_STATUSES:
        raise Conflict(f"Task {task.id} already ended ({task.status}); there is nothing to cancel.")
    client = await state.temporal_client()
    try:
        await client.get_workflow_handle(task.workflow_id).cancel()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise ServiceUnavailable(f"Could not reach Temporal to cancel: {exc}") from exc
    audit.record(
        session,
        tenant_id=task.tenant_id,
        task_id=task.id,
        actor=f"user:{user.user_id}",
        action="task.cancel_requested",
        subject=task.id,
        reason="cancel requested",
    )
    session.commit()
    return task


async def decide(
    session: Session, state: AppState, user: Principal, checkpoint_id: str, decision: str, comment: str
) -> Checkpoint:
    cp = session.exec(
        select(Checkpoint).where(Checkpoint.id == checkpoint_id, Checkpoint.tenant_id == user.tenant_id)
    ).first()
    if cp is None:
        raise NotFound(f"No checkpoint {checkpoint_id!r} in tenant {user.tenant_id!r}.")
    if not can(state, user, "checkpoint", "decide"):
        raise Forbidden("Deciding a checkpoint needs the approver role.")
    if cp.requester_id == user.user_id:
        raise Forbidden("You requested this task; someone else must decide its checkpoint.")
    if cp.status != "open":
        raise Conflict(
            f"Checkpoint {cp.id} is already {cp.status}" + (f" by {cp.decided_by}." if cp.decided_by else ".")
        )
    req = DecisionRequest(
        checkpoint_id=cp.id,
        decision=decision,  # type: ignore[arg-type]
        decider_id=user.user_id,
        decider_roles=list(user.roles),
        comment=comment,
    )
    client = await state.temporal_client()
    try:
        await client.get_workflow_handle(f"task-{cp.task_id}").execute_update(
            DECIDE_UPDATE_NAME, req, result_type=DecisionResult
        )
    except WorkflowUpdateFailedError as exc:
        raise _update_refusal(exc) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(
                f"Task {cp.task_id} is no longer running; the checkpoint cannot be decided."
            ) from exc
        raise ServiceUnavailable(f"Could not reach Temporal: {exc}") from exc
    session.expire_all()
    refreshed = session.get(Checkpoint, cp.id)
    assert refreshed is not None
    return refreshed


def _update_refusal(exc: WorkflowUpdateFailedError) -> ApiError:
    cause: Any = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type == "Forbidden":
        return Forbidden(cause.message)
    message = cause.message if isinstance(cause, ApplicationError) else str(exc)
    return Conflict(f"The checkpoint cannot take this decision: {message}")
