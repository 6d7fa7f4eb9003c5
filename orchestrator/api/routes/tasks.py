"""/api/tasks: submit, list, read, cancel."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy import func
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from orchestrator import task_service
from orchestrator.api.deps import Allowed, CurrentUser, Principal, SessionDep, StateDep, can
from orchestrator.api.schemas import (
    CheckpointPublic,
    ModelCallPublic,
    StepPublic,
    TaskCreate,
    TaskDetail,
    TaskList,
    TaskPublic,
    ToolCallPublic,
)
from orchestrator.models import Checkpoint, ModelCall, Task, TaskStep, ToolCall
from orchestrator.preview import preview

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

TaskStatusFilter = Query(None, pattern="^(queued|running|waiting|completed|failed|cancelled|rejected)$")


@router.post("", status_code=202, response_model=TaskPublic, summary="Submit a task")
async def submit_task(
    body: TaskCreate,
    session: SessionDep,
    state: StateDep,
    response: Response,
    user: Annotated[Principal, Depends(Allowed("task", "submit"))],
    idempotency_key: Annotated[str | None, Header(max_length=200, pattern=r"^[\x21-\x7e]+$")] = None,
) -> TaskPublic:
    """Start a task. With an `Idempotency-Key` header a retry returns the same task (200) and starts
    no second workflow. Bodies over the documented limit (64 KiB by default) answer 413."""
    task, created = await task_service.submit(session, state, user, body, idempotency_key)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return await run_in_threadpool(_public, session, task)


@router.post("/preview", summary="Preview a task: workflow, steps, likely checkpoints, budget estimate")
def preview_task(
    body: TaskCreate,
    state: StateDep,
    user: Annotated[Principal, Depends(Allowed("task", "submit"))],
) -> dict[str, Any]:
    """What the request would run, before anything starts: the workflow (named, or picked by
    intake with its confidence and the runners-up), its steps and tools with the decisions the
    policies could give, the checkpoints it will or may need, and a budget estimate. Nothing is
    written."""
    intake = None
    ref = body.workflow
    if ref is None:
        result = state.intake.classify(body.input)
        ref = task_service.pick_workflow(state, body.input)
        intake = {
            "picked": ref,
            "confidence": round(result.confidence, 3),
            "options": [{"workflow": r, "confidence": round(p, 3)} for r, p in result.ranked],
        }
    spec = task_service.pin(state, ref)
    return preview(state, user.tenant_id, body, spec, intake)


@router.get("", response_model=TaskList, summary="List tasks")
def list_tasks(
    session: SessionDep,
    state: StateDep,
    user: CurrentUser,
    status: str | None = TaskStatusFilter,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> TaskList:
    query = select(Task).where(Task.tenant_id == user.tenant_id)
    if not can(state, user, "task", "read_all"):
        query = query.where(Task.requester_id == user.user_id)
    if status:
        query = query.where(Task.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    tasks = session.exec(query.order_by(Task.created_at.desc()).offset(offset).limit(limit)).all()  # type: ignore[attr-defined]
    costs = task_service.cost_of(session, [t.id for t in tasks])
    return TaskList(items=[TaskPublic.build(t, costs[t.id]) for t in tasks], total=total)


@router.get(
    "/{task_id}", response_model=TaskDetail, summary="A task with its steps, calls, checkpoints and cost"
)
def get_task(task_id: str, session: SessionDep, state: StateDep, user: CurrentUser) -> TaskDetail:
    task = task_service.visible_task(session, state, user, task_id)
    scoped = {"task_id": task.id, "tenant_id": user.tenant_id}

    def rows(model, order):  # type: ignore[no-untyped-def]
        q = select(model).where(*(getattr(model, k) == v for k, v in scoped.items()))
        return session.exec(q.order_by(*order)).all()

    public = TaskPublic.build(task, task_service.cost_of(session, [task.id])[task.id])
    return TaskDetail(
        **public.model_dump(),
        input=task.input_text,
        data=json.loads(task.input_json),
        output=json.loads(task.output_json) if task.output_json else None,
        error=task.error,
        steps=[StepPublic.build(s) for s in rows(TaskStep, [TaskStep.index])],
        model_calls=[
            ModelCallPublic.build(m) for m in rows(ModelCall, [ModelCall.created_at, ModelCall.attempt])
        ],
        tool_calls=[ToolCallPublic.build(t) for t in rows(ToolCall, [ToolCall.created_at])],
        checkpoints=[CheckpointPublic.build(c) for c in rows(Checkpoint, [Checkpoint.created_at])],
    )


@router.post("/{task_id}/cancel", status_code=202, response_model=TaskPublic, summary="Cancel a task")
async def cancel_task(task_id: str, session: SessionDep, state: StateDep, user: CurrentUser) -> TaskPublic:
    task = await task_service.cancel(session, state, user, task_id)
    return await run_in_threadpool(_public, session, task)


def _public(session: SessionDep, task: Task) -> TaskPublic:
    return TaskPublic.build(task, task_service.cost_of(session, [task.id])[task.id])
