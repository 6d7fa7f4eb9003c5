"""Submitting, reading and cancelling tasks; deciding checkpoints. Used by the API (and the UI).

Every query is scoped to the caller's tenant; a task of another tenant, or one the caller may
not read, answers 404 so ids never leak across tenants.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import func, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from orchestrator import audit
from orchestrator.budgets.service import BudgetError
from orchestrator.catalog.registry import CatalogError
from orchestrator.contracts import (
    TASK_WORKFLOW_NAME,
    TERMINAL_STATUSES,
    TaskWorkflowInput,
    WorkflowSpec,
)
from orchestrator.errors import Conflict, Forbidden, NotFound, ServiceUnavailable, Unprocessable
from orchestrator.models import AuditEvent, Checkpoint, ModelCall, Task, TaskStep, ToolCall, as_utc, utcnow
from orchestrator.services.access import Principal, can
from orchestrator.services.schemas import (
    CheckpointPublic,
    CostSummary,
    ModelCallPublic,
    StepPublic,
    TaskCreate,
    TaskDetail,
    TaskList,
    TaskPublic,
    ToolCallPublic,
)
from orchestrator.services.state import AppState

log = logging.getLogger(__name__)

# The audit action of a task whose workflow Temporal never received: a retry may start it.
START_FAILED = "task.start_failed"


def cost_of(session: Session, task_ids: list[str]) -> dict[str, CostSummary]:
    """A task's cost is the sum of all its router requests, failed attempts and retries included."""
    summary = {tid: CostSummary(total_usd=Decimal(0), estimated=False, model_calls=0) for tid in task_ids}
    if not task_ids:
        return summary
    calls = col(ModelCall.task_id).in_(task_ids)
    if session.get_bind().dialect.name == "postgresql":  # NUMERIC sums are exact there
        grouped = session.exec(
            select(
                col(ModelCall.task_id),
                func.sum(col(ModelCall.cost_usd)),
                func.count(),
                func.bool_or(col(ModelCall.cost_estimated)),
            )
            .where(calls)
            .group_by(col(ModelCall.task_id))
        )
        for tid, total, count, estimated in grouped:
            summary[tid] = CostSummary(total_usd=Decimal(total), estimated=bool(estimated), model_calls=count)
        return summary
    # Summed in Decimal here, not in SQL: SQLite would add NUMERICs as floats.
    rows = session.exec(
        select(col(ModelCall.task_id), col(ModelCall.cost_usd), col(ModelCall.cost_estimated)).where(calls)
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


# What a list row shows (TaskPublic): the list never loads a task's input, output or pinned
# definition, which are most of a task row's bytes.
LIST_COLUMNS: tuple[QueryableAttribute[Any], ...] = tuple(
    cast("QueryableAttribute[Any]", c)
    for c in (
        Task.id,
        Task.tenant_id,
        Task.requester_id,
        Task.workflow_name,
        Task.workflow_version,
        Task.status,
        Task.outcome,
        Task.created_at,
        Task.ended_at,
    )
)


def list_visible(
    session: Session,
    state: AppState,
    user: Principal,
    status: str | None = None,
    workflow: str | None = None,
    limit: int = 50,
    offset: int = 0,
    before: str | None = None,
) -> TaskList:
    """Newest first: the caller's own tasks, or all of the tenant's for those who may read all.

    `before` (a task id, normally the last one of the previous page) starts the page after that
    task in this order: keyset pagination, as fast on the thousandth page as on the first, where
    a deep `offset` makes the database walk every row it skips. Both may be given (the offset
    then counts from `before`). Indexes 0009: (tenant, created_at, id), with requester or status
    in between for the filtered lists."""
    where = [col(Task.tenant_id) == user.tenant_id]
    if not can(state, user, "task", "read_all"):
        where.append(col(Task.requester_id) == user.user_id)
    if status:
        where.append(col(Task.status) == status)
    if workflow:
        where.append(col(Task.workflow_name) == workflow)
    total = session.exec(select(func.count()).select_from(Task).where(*where)).one()
    if before is not None:
        anchor = session.exec(
            select(Task.created_at, Task.id).where(Task.tenant_id == user.tenant_id, Task.id == before)
        ).first()
        if anchor is None:
            raise Unprocessable(f"`before`: no task {before!r} in tenant {user.tenant_id!r}.")
        where.append(tuple_(col(Task.created_at), col(Task.id)) < tuple_(*anchor))
    # Plain rows, not Task instances: a list row is read once and thrown away, and building ORM
    # objects was a tenth of the request's CPU.
    page = (
        select(*LIST_COLUMNS)
        .where(*where)
        .order_by(col(Task.created_at).desc(), col(Task.id).desc())
        .offset(offset)
        .limit(limit)
    )
    tasks = session.exec(page).all()
    costs = cost_of(session, [t.id for t in tasks])
    return TaskList(items=[TaskPublic.build(t, costs[t.id]) for t in tasks], total=total)


def detail(session: Session, state: AppState, user: Principal, task_id: str) -> TaskDetail:
    """A task with everything that happened in it: steps, model calls, tool calls, checkpoints."""
    task = visible_task(session, state, user, task_id)
    scoped = {"task_id": task.id, "tenant_id": user.tenant_id}

    def rows(model, order):
        q = select(model).where(*(getattr(model, k) == v for k, v in scoped.items()))
        return session.exec(q.order_by(*order)).all()

    public = TaskPublic.build(task, cost_of(session, [task.id])[task.id])
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


def pin(state: AppState, ref: str) -> WorkflowSpec:
    try:
        return state.catalog.pin(ref)
    except CatalogError as exc:
        raise Unprocessable(f"{exc}.", title="Unknown workflow") from exc


def pick_workflow(state: AppState, text: str) -> str:
    """Intake: the workflow for a request that names none, or a 422 offering the top three."""
    planner = state.settings.intake_planner_workflow or None
    choice = state.intake.choose(text, threshold=state.settings.intake_threshold, planner_ref=planner)
    if choice.ref is not None:
        return choice.ref
    options = [{"workflow": ref, "confidence": round(p, 3)} for ref, p in choice.options]
    listed = ", ".join(f"{o['workflow']} ({o['confidence']:.0%})" for o in options)
    raise Unprocessable(
        f"Intake could not tell which workflow fits (best guess {choice.confidence:.0%}). "
        f"Choose one and send it as `workflow`: {listed}.",
        title="Choose a workflow",
        extra={"options": options},
    )


async def submit(
    session: Session, state: AppState, user: Principal, body: TaskCreate, idempotency_key: str | None
) -> tuple[Task, bool]:
    """Create the task row, then start its workflow. Returns (task, created).

    Database work runs in the thread pool: a blocking connection checkout on the event loop would
    stall every request in flight (and, under a burst, deadlock against them).
    """
    spec = pin(state, body.workflow or pick_workflow(state, body.input))
    task, created = await run_in_threadpool(_create, session, state, user, body, idempotency_key, spec)
    # A replay starts what its first attempt could not: that attempt died before the start
    # (`queued`), or Temporal was unreachable (failed with START_FAILED, and nothing ever ran).
    if created or task.status == "queued" or await run_in_threadpool(_reopen_unstarted, session, task):
        await _start(session, state, task, WorkflowSpec.model_validate_json(task.definition_json))
    return task, created


def _create(
    session: Session,
    state: AppState,
    user: Principal,
    body: TaskCreate,
    idempotency_key: str | None,
    spec: WorkflowSpec,
) -> tuple[Task, bool]:
    budget = _task_budget(state, user, spec, body)
    if idempotency_key is not None:
        existing = _by_key(session, user, idempotency_key)
        if existing is not None:
            return _same_request(existing, spec, body), False
    task = Task(
        tenant_id=user.tenant_id,
        requester_id=user.user_id,
        workflow_name=spec.name,
        workflow_version=spec.version,
        input_text=body.input,
        input_json=json.dumps(body.data, sort_keys=True),
        definition_json=spec.model_dump_json(),
        idempotency_key=idempotency_key,
        budget_usd=budget,
    )
    session.add(task)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()  # a concurrent retry with the same key won the race
        existing = _by_key(session, user, idempotency_key or "")
        if existing is None:
            raise
        return _same_request(existing, spec, body), False
    audit.record(
        session,
        tenant_id=user.tenant_id,
        task_id=task.id,
        actor=f"user:{user.user_id}",
        action="task.submitted",
        subject=task.id,
        reason=f"workflow {spec.ref}",
        data={"workflow": spec.ref, "idempotency_key": idempotency_key, "budget_usd": str(budget)},
    )
    session.commit()  # the task's budget counter is made from Task.budget_usd at its first call
    return task, True


def _task_budget(state: AppState, user: Principal, spec: WorkflowSpec, body: TaskCreate) -> Decimal | None:
    """The submit-time budget (within the tenant's maximum), else the definition's default."""
    wanted = body.budget_usd if body.budget_usd is not None else spec.default_budget_usd
    if wanted is None:
        return None
    try:
        return state.budgets.check_task_budget(user.tenant_id, wanted)
    except BudgetError as exc:
        raise Unprocessable(f"{exc}.", title="Budget refused") from exc


def _by_key(session: Session, user: Principal, key: str) -> Task | None:
    return session.exec(
        select(Task).where(
            Task.tenant_id == user.tenant_id, Task.requester_id == user.user_id, Task.idempotency_key == key
        )
    ).first()


def _same_request(task: Task, spec: WorkflowSpec, body: TaskCreate) -> Task:
    same = (
        task.workflow_name == spec.name
        and task.input_text == body.input
        and json.loads(task.input_json) == body.data
    )
    if not same:
        raise Conflict("This Idempotency-Key was already used for a different request; use a new key.")
    return task


async def _start(session: Session, state: AppState, task: Task, spec: WorkflowSpec) -> None:
    """Start the task's workflow; the task row is written already, so every way out of here
    leaves it in a known state: started, or `failed` with the reason.

    Failed, not left `queued`: a queued row with no workflow looks alive to its reader and cannot
    be cancelled. When Temporal was unreachable the failure is recorded as START_FAILED, and the
    same request with the same Idempotency-Key starts the task again (`_reopen_unstarted`); any
    other failure is not one a retry would cure.
    """
    try:
        inp = TaskWorkflowInput(
            task_id=task.id,
            tenant_id=task.tenant_id,
            requester_id=task.requester_id,
            # The workflow does not read the intake examples (the task row keeps the whole spec).
            definition=spec.model_copy(update={"examples": []}),
            input_text=task.input_text,
            input_data=json.loads(task.input_json),
            round_trips=True,
        )
        client = await state.temporal_client()
        await client.start_workflow(
            TASK_WORKFLOW_NAME,
            inp,
            id=task.workflow_id,
            task_queue=state.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except (RPCError, ServiceUnavailable) as exc:
        if await _started_anyway(state, task):
            return  # the request reached Temporal although its answer did not reach us
        log.warning("could not start workflow for %s: %s", task.id, exc)
        reason = "could not start the workflow: Temporal was unreachable"
        await run_in_threadpool(_mark_unstarted, session, task, reason, START_FAILED)
        raise ServiceUnavailable(
            f"Task {task.id} could not be started: Temporal is unavailable. It is marked failed; "
            "send the same request with the same Idempotency-Key to start it when Temporal is back."
        ) from exc
    except Exception:
        log.exception("could not start workflow for %s", task.id)
        reason = "could not start the workflow (an internal error; see the server log)"
        await run_in_threadpool(_mark_unstarted, session, task, reason, "task.ended")
        raise


async def _started_anyway(state: AppState, task: Task) -> bool:
    if state.temporal is None:
        return False
    try:
        await state.temporal.get_workflow_handle(task.workflow_id).describe()
    except RPCError:
        return False
    return True


def _mark_unstarted(session: Session, task: Task, error: str, action: str) -> None:
    task.status, task.error, task.ended_at = "failed", error, utcnow()
    session.add(task)
    audit.record(
        session,
        tenant_id=task.tenant_id,
        task_id=task.id,
        actor="api",
        action=action,
        subject=task.id,
        reason=error,
    )
    session.commit()


def _reopen_unstarted(session: Session, task: Task) -> bool:
    """Back to `queued` if the task failed only because its workflow could not be started.

    Known from the task's audit trail: its last event is START_FAILED, so no workflow ever wrote
    to it (a running workflow records its steps)."""
    if task.status != "failed":
        return False
    last = session.exec(
        select(AuditEvent.action)
        .where(AuditEvent.tenant_id == task.tenant_id, AuditEvent.task_id == task.id)
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    if last != START_FAILED:
        session.rollback()
        return False
    task.status, task.error, task.ended_at = "queued", None, None
    session.add(task)
    audit.record(
        session,
        tenant_id=task.tenant_id,
        task_id=task.id,
        actor="api",
        action="task.restarted",
        subject=task.id,
        reason="the same request was sent again after its workflow could not be started",
    )
    session.commit()
    return True


async def cancel(session: Session, state: AppState, user: Principal, task_id: str) -> Task:
    task = await run_in_threadpool(_cancellable, session, state, user, task_id)
    client = await state.temporal_client()
    try:
        await client.get_workflow_handle(task.workflow_id).cancel()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise ServiceUnavailable(f"Could not reach Temporal to cancel: {exc}") from exc
        if task.status == "queued" and utcnow() - as_utc(task.created_at) > UNSTARTED_AFTER:
            # Its workflow was never started (the process submitting it died first): nothing runs
            # that could end it, so it ends here. A recent one may still be starting; leave it.
            await run_in_threadpool(_end_unstarted, session, task)
    return task


# A task still queued with no workflow this long after it was written will not be started by
# the request that wrote it (that request starts it within seconds, or marks it failed).
UNSTARTED_AFTER = timedelta(minutes=2)


def _end_unstarted(session: Session, task: Task) -> None:
    task.status, task.error, task.ended_at = "cancelled", "cancelled before its workflow started", utcnow()
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


def _cancellable(session: Session, state: AppState, user: Principal, task_id: str) -> Task:
    """Check the caller may cancel, and record the request first: from then on no tool may run."""
    task = visible_task(session, state, user, task_id)
    own = task.requester_id == user.user_id and can(state, user, "task", "cancel_own")
    if not (own or can(state, user, "task", "cancel_any")):
        raise Forbidden("You may cancel only your own tasks.")
    if task.status in TERMINAL_STATUSES:
        raise Conflict(f"Task {task.id} already ended ({task.status}); there is nothing to cancel.")
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
