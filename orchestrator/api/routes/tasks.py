"""/api/tasks: submit, list, read, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import Allowed, CurrentUser, SessionDep, StateDep
from orchestrator.api.errors import PROBLEMS
from orchestrator.evidence import Bundle
from orchestrator.models import Task
from orchestrator.services import evidence as evidence_service
from orchestrator.services import tasks as task_service
from orchestrator.services.access import Principal
from orchestrator.services.limits import MAX_OFFSET
from orchestrator.services.preview_request import preview_request
from orchestrator.services.schemas import TaskCreate, TaskDetail, TaskList, TaskPublic

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=PROBLEMS)

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
    return preview_request(state, user.tenant_id, body)


@router.get("", response_model=TaskList, summary="List tasks")
def list_tasks(
    session: SessionDep,
    state: StateDep,
    user: CurrentUser,
    status: str | None = TaskStatusFilter,
    workflow: str | None = Query(None, max_length=120, description="workflow name"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    before: str | None = Query(
        None,
        max_length=40,
        description="a task id (the last one of the page you have): the page of older tasks after it",
    ),
) -> TaskList:
    """My tasks, newest first (all tasks of the tenant for approvers and admins).

    Page with `before=<the last task id you got>` (keyset: every page as fast as the first);
    `offset` still works, but a deep offset costs the database every row it skips."""
    return task_service.list_visible(session, state, user, status, workflow, limit, offset, before)


@router.get(
    "/{task_id}", response_model=TaskDetail, summary="A task with its steps, calls, checkpoints and cost"
)
def get_task(task_id: str, session: SessionDep, state: StateDep, user: CurrentUser) -> TaskDetail:
    return task_service.detail(session, state, user, task_id)


@router.get(
    "/{task_id}/evidence",
    response_model=Bundle,
    summary="The task's evidence bundle, checkable offline with `frontdesk audit verify-bundle`",
)
def get_evidence(task_id: str, session: SessionDep, state: StateDep, user: CurrentUser) -> Bundle:
    return evidence_service.build(session, state, user, task_id)


@router.post("/{task_id}/cancel", status_code=202, response_model=TaskPublic, summary="Cancel a task")
async def cancel_task(task_id: str, session: SessionDep, state: StateDep, user: CurrentUser) -> TaskPublic:
    task = await task_service.cancel(session, state, user, task_id)
    return await run_in_threadpool(_public, session, task)


def _public(session: SessionDep, task: Task) -> TaskPublic:
    return TaskPublic.build(task, task_service.cost_of(session, [task.id])[task.id])
