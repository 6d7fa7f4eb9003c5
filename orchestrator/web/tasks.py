"""Requester pages: submit a task (with a preview), my tasks, a task's live timeline, cancel.

    GET  /tasks                    my tasks (all of the tenant's for approvers and admins), filters
    GET  /tasks/new                the submit form
    POST /tasks/new/preview        htmx: what the request would run, need and cost
    POST /tasks                    submit; bad input re-renders the form with everything kept
    GET  /tasks/{id}               the task with its timeline, kept live by server-sent events
    GET  /tasks/{id}/timeline      the timeline fragment (the no-SSE fallback polls it)
    GET  /tasks/{id}/events        SSE: a `timeline` event whenever it changes, `done` at the end
    POST /tasks/{id}/cancel        cancel
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.api.errors import NotFound, ServiceError
from orchestrator.models import (
    Checkpoint,
    CheckpointComment,
    CheckpointDecision,
    Membership,
    ModelCall,
    Task,
    TaskStep,
    ToolCall,
    utcnow,
)
from orchestrator.services import tasks as task_service
from orchestrator.services.access import can
from orchestrator.services.attachments import AttachmentError, attach
from orchestrator.services.preview_request import preview_request
from orchestrator.services.schemas import TaskCreate
from orchestrator.services.state import AppState
from orchestrator.web import sessions, timeline, waterfall
from orchestrator.web.deps import CsrfChecked, WebAllowed, WebUser, WebUserDep
from orchestrator.web.render import render, templates

router = APIRouter(include_in_schema=False)
STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled", "rejected"]
PAGE_SIZE = 25
SSE_POLL_SECONDS = 0.5
SSE_MAX_SECONDS = 600  # then the browser reconnects by itself: no stream lives for ever
SSE_RECHECK_POLLS = 10  # every 5 s: a stream ends soon after its session does
Submitter = Annotated[WebUser, Depends(WebAllowed("task", "submit"))]


@router.get("/tasks", name="web_tasks")
def task_list(
    request: Request,
    db: SessionDep,
    state: StateDep,
    user: WebUserDep,
    status: Annotated[str, Query(max_length=20)] = "",
    workflow: Annotated[str, Query(max_length=120)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    status = status if status in STATUSES else ""
    workflows = sorted({ref.split("@")[0] for ref in state.catalog.workflow_refs()})
    listing = task_service.list_visible(
        db, state, user.principal, status or None, workflow or None, PAGE_SIZE, (page - 1) * PAGE_SIZE
    )
    return render(
        request,
        "tasks/list.html",
        {
            "tasks": listing.items,
            "total": listing.total,
            "page": page,
            "pages": max(1, -(-listing.total // PAGE_SIZE)),
            "status": status,
            "workflow": workflow,
            "statuses": STATUSES,
            "workflows": workflows,
            "names": timeline.people_names(db, user.tenant_id),
        },
    )


def _form_context(state: AppState, user: WebUser, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    refs = state.catalog.workflow_refs()
    workflows = [(ref, state.catalog.pin(ref).description) for ref in refs]
    return {
        "workflows": workflows,
        "max_budget": state.budgets.max_task_budget(user.tenant_id),
        "values": {"input": "", "workflow": "", "budget_usd": "", "idempotency_key": secrets.token_urlsafe(16)}
        | values,
        **extra,
    }


@router.get("/tasks/new", name="web_task_new")
def task_form(request: Request, state: StateDep, user: Submitter, workflow: str = "") -> HTMLResponse:
    return render(request, "tasks/new.html", _form_context(state, user, {"workflow": workflow[:160]}))


def _budget(raw: str) -> Decimal | None:
    if not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation as exc:
        raise ServiceError(f"The budget {raw!r} is not a number; write it in USD, e.g. 0.50.") from exc
    if not value.is_finite() or value <= 0:
        raise ServiceError("The budget must be a positive amount in USD, e.g. 0.50 (or leave it empty).")
    return value


def task_request(text: str, workflow: str, budget: str, data: dict[str, Any]) -> TaskCreate:
    if not text.strip():
        raise ServiceError("Describe the task: the request text is empty.")
    try:
        return TaskCreate(workflow=workflow or None, input=text, data=data, budget_usd=_budget(budget))
    except ValidationError as exc:
        problems = {e["loc"][0] if e["loc"] else "": e["msg"] for e in exc.errors()}
        if any(e["loc"][:1] == ("input",) and e["type"] == "string_too_long" for e in exc.errors()):
            raise ServiceError("The request and its attachment are too long together (32,000 characters at most).") from exc
        raise ServiceError("; ".join(f"{k}: {v}" for k, v in problems.items())) from exc


@router.post("/tasks/new/preview", name="web_task_preview")
def task_preview(
    request: Request,
    state: StateDep,
    user: CsrfChecked,
    _: Submitter,
    input: Annotated[str, Form(max_length=32000)] = "",
    workflow: Annotated[str, Form(max_length=160)] = "",
    budget_usd: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    try:
        body = task_request(input, workflow, budget_usd, {})
        result = preview_request(state, user.tenant_id, body)
    except ServiceError as exc:
        return render(request, "partials/form_error.html", {"error": exc.detail, "extra": exc.extra}, 422)
    return render(request, "partials/preview.html", {"preview": result})


@router.post("/tasks", name="web_task_submit")
async def task_submit(
    request: Request,
    db: SessionDep,
    state: StateDep,
    user: CsrfChecked,
    _: Submitter,
    input: Annotated[str, Form(max_length=32000)] = "",
    workflow: Annotated[str, Form(max_length=160)] = "",
    budget_usd: Annotated[str, Form(max_length=40)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
    attachment: Annotated[UploadFile | None, File()] = None,
    choose: Annotated[str, Form(max_length=160)] = "",
) -> Response:
    workflow = choose or workflow  # one of intake's suggestions, clicked after an ambiguous request
    values = {"input": input, "workflow": workflow, "budget_usd": budget_usd, "idempotency_key": idempotency_key}
    try:
        text, data = input, {}
        if attachment is not None and attachment.filename:
            raw = await attachment.read()
            text, facts = attach(input, attachment.filename, attachment.content_type or "", raw)
            data = {"attachment": facts}
        body = task_request(text, workflow, budget_usd, data)
        task, _created = await task_service.submit(db, state, user.principal, body, idempotency_key or None)
    except (ServiceError, AttachmentError) as exc:
        detail = exc.detail if isinstance(exc, ServiceError) else str(exc)
        status = exc.status if isinstance(exc, ServiceError) else 422
        options = exc.extra.get("options", []) if isinstance(exc, ServiceError) else []
        if status == 409 or status >= 500:
            # The key is spent (another request used it, or the task was created and failed to
            # start): a new attempt from this form must be a new request.
            values["idempotency_key"] = secrets.token_urlsafe(16)
        context = await run_in_threadpool(_form_context, state, user, values, error=detail, options=options)
        return render(request, "tasks/new.html", context, 422 if status < 500 else status)
    return RedirectResponse(request.url_for("web_task", task_id=task.id).path, 303)


def _timeline_html(request: Request, state: AppState, user: WebUser, task_id: str) -> tuple[str, bool]:
    with Session(state.engine, expire_on_commit=False) as db:
        detail = task_service.detail(db, state, user.principal, task_id)
        tl = timeline.build(db, detail, user.tenant_id)
    context = {
        "request": request,
        "tl": tl,
        "me": user,
        "csrf": user.csrf,
        "can_cancel": _can_cancel(state, user, tl),
        "can_review": can(state, user.principal, "checkpoint", "read"),
        "wf": waterfall.build(detail, utcnow()),
        "wf_colours": waterfall.COLOURS,
        "wf_kinds": waterfall.KIND_NAMES,
    }
    return templates.get_template("partials/timeline.html").render(context), tl.ended


def _can_cancel(state: AppState, user: WebUser, tl: timeline.Timeline) -> bool:
    if tl.ended:
        return False
    own = tl.task.requester_id == user.user_id and can(state, user.principal, "task", "cancel_own")
    return own or can(state, user.principal, "task", "cancel_any")


@router.get("/tasks/{task_id}", name="web_task")
def task_page(request: Request, state: StateDep, user: WebUserDep, task_id: str) -> HTMLResponse:
    html, ended = _timeline_html(request, state, user, task_id)
    return render(request, "tasks/show.html", {"task_id": task_id, "timeline_html": html, "ended": ended})


@router.get("/tasks/{task_id}/timeline", name="web_task_timeline")
def task_timeline(request: Request, state: StateDep, user: WebUserDep, task_id: str) -> HTMLResponse:
    html, _ended = _timeline_html(request, state, user, task_id)
    return HTMLResponse(html)


def _sse(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return f"event: {event}\n{lines}\n"


def _fingerprint(state: AppState, tenant_id: str, task_id: str) -> tuple[Any, ...]:
    """A few cheap aggregates that change whenever anything the timeline shows changes, so the stream
    rebuilds and renders the timeline only then."""
    cps = select(Checkpoint.id).where(Checkpoint.task_id == task_id, Checkpoint.tenant_id == tenant_id)
    parts = [
        select(Task.status).where(Task.id == task_id, Task.tenant_id == tenant_id),
        select(Task.updated_at).where(Task.id == task_id, Task.tenant_id == tenant_id),
        select(func.count(), func.max(TaskStep.ended_at), func.max(TaskStep.status)).where(TaskStep.task_id == task_id),
        select(func.count(), func.max(ModelCall.created_at)).where(ModelCall.task_id == task_id),
        select(func.count(), func.max(ToolCall.updated_at)).where(ToolCall.task_id == task_id),
        select(func.count(), func.max(Checkpoint.decided_at), func.sum(Checkpoint.escalation_level))
        .where(Checkpoint.task_id == task_id),
        select(func.count()).where(col(CheckpointDecision.checkpoint_id).in_(cps)),
        select(func.count()).where(col(CheckpointComment.checkpoint_id).in_(cps)),
    ]
    with Session(state.engine) as db:
        return tuple(db.exec(q).first() for q in parts)  # type: ignore[call-overload]  # a list of selects of different shapes


def _still_allowed(state: AppState, cookie: str | None, user: WebUser, task_id: str) -> bool:
    """The session is alive and the person still holds the roles the stream started with."""
    with Session(state.engine) as db:
        row = sessions.lookup(db, cookie)
        if row is None or row.user_id != user.user_id or row.tenant_id != user.tenant_id:
            return False
        roles = db.exec(
            select(Membership.role).where(Membership.user_id == user.user_id, Membership.tenant_id == user.tenant_id)
        ).all()
    return tuple(sorted(roles)) == user.principal.roles


@router.get("/tasks/{task_id}/events", name="web_task_events")
async def task_events(request: Request, state: StateDep, user: WebUserDep, task_id: str) -> StreamingResponse:
    """Server-sent events: the rendered timeline each time it changes (checked every 0.5 s by a
    cheap fingerprint; the session and the person's roles are re-checked every few seconds).

    When the server begins to shut down the stream ends at its next poll, so it does not hold the
    shutdown; the browser reconnects by itself (to another replica behind a load balancer)."""
    first, ended = await run_in_threadpool(_timeline_html, request, state, user, task_id)
    cookie = request.cookies.get(sessions.COOKIE)
    shutting_down = request.app.state.shutting_down

    async def stream() -> AsyncIterator[str]:
        last, done = first, ended
        seen = await run_in_threadpool(_fingerprint, state, user.tenant_id, task_id)
        yield "retry: 2000\n\n"
        yield _sse("timeline", first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SSE_MAX_SECONDS
        polls = 0
        while not done and loop.time() < deadline:
            await asyncio.sleep(SSE_POLL_SECONDS)
            polls += 1
            if shutting_down.is_set() or await request.is_disconnected():
                return
            if polls % SSE_RECHECK_POLLS == 0 and not await run_in_threadpool(
                _still_allowed, state, cookie, user, task_id
            ):
                return  # signed out or roles changed: a reconnect is authorised afresh
            now = await run_in_threadpool(_fingerprint, state, user.tenant_id, task_id)
            if now == seen:
                continue
            seen = now
            try:
                html, done = await run_in_threadpool(_timeline_html, request, state, user, task_id)
            except NotFound:
                return
            if html != last:
                last = html
                yield _sse("timeline", html)
        if done:
            yield _sse("done", "ended")

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.post("/tasks/{task_id}/cancel", name="web_task_cancel")
async def task_cancel(request: Request, db: SessionDep, state: StateDep, user: CsrfChecked, task_id: str) -> Response:
    await task_service.cancel(db, state, user.principal, task_id)
    return RedirectResponse(request.url_for("web_task", task_id=task_id).path, 303)
