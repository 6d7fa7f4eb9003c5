"""Approver pages: the inbox, one checkpoint with its decision forms, my decision history.

    GET  /inbox                              open checkpoints I may decide, oldest first, filters
    GET  /checkpoints/{id}                   the exact tool call, the task, the rule, SLA, history
    POST /checkpoints/{id}/decision          approve | reject | request_changes | approve_with_edits
    POST /checkpoints/{id}/edits             review edited arguments: validated, diff shown, confirm
    POST /checkpoints/{id}/comments          comment
    GET  /decisions                          my decisions, newest first
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.api.errors import ServiceError, Unprocessable
from orchestrator.budgets.rules import BudgetError, to_usd
from orchestrator.catalog.registry import CatalogError
from orchestrator.models import Checkpoint, ToolCall
from orchestrator.services import checkpoints as checkpoint_service
from orchestrator.services import tasks as task_service
from orchestrator.services.access import can
from orchestrator.services.checkpoint_updates import Pending
from orchestrator.services.schemas import CheckpointPublic
from orchestrator.services.state import AppState
from orchestrator.web import argform, timeline
from orchestrator.web.deps import CsrfChecked, WebAllowed, WebUser, WebUserDep
from orchestrator.web.render import render

router = APIRouter(include_in_schema=False)
Reader = Annotated[WebUser, Depends(WebAllowed("checkpoint", "read"))]
KINDS = ["tool_approval", "budget_raise", "plan_review", "output_review"]
DECISIONS = {"approve", "reject", "request_changes", "approve_with_edits"}
# Shown after a redirect (`?notice=accepted`): a fixed text, never one taken from the URL.
NOTICES = {
    "accepted": "Your decision is accepted by the task and will be recorded as soon as the database is "
    "reachable again. Do not send it again; this page shows it once it is recorded.",
}


@router.get("/inbox", name="web_inbox")
def inbox(
    request: Request,
    db: SessionDep,
    user: Reader,
    kind: Annotated[str, Query(max_length=30)] = "",
    tool: Annotated[str, Query(max_length=120)] = "",
) -> HTMLResponse:
    query = select(Checkpoint).where(
        Checkpoint.tenant_id == user.tenant_id,
        Checkpoint.status == "open",
        *checkpoint_service.inbox_filter(user.principal),
    )
    all_open = db.exec(query.order_by(col(Checkpoint.created_at))).all()
    tools = sorted({c.tool for c in all_open if c.tool})
    rows = [c for c in all_open if (not kind or c.kind == kind) and (not tool or c.tool == tool)]
    items = [CheckpointPublic.build(c) for c in rows]
    context = {
        "items": items,
        "approvals": checkpoint_service.approvals_so_far(db, [c.id for c in rows]),
        "names": timeline.people_names(db, user.tenant_id),
        "kind": kind,
        "tool": tool,
        "kinds": KINDS,
        "tools": tools,
        "total_open": len(all_open),
    }
    return render(request, "inbox/list.html", context)


def _tool_model(db: Session, state: AppState, cp: Checkpoint) -> tuple[dict[str, Any], type[BaseModel] | None]:
    """The argument schema and model to edit with: the tool's own (at the version the task pinned)."""
    if cp.kind == "budget_raise":
        return argform.BUDGET_RAISE_SCHEMA, None
    if cp.kind != "tool_approval":
        return {}, None
    version = None
    if cp.tool_call_id:
        call = db.get(ToolCall, cp.tool_call_id)
        version = call.tool_version if call is not None else None
    try:
        tool = state.catalog.tool(f"{cp.tool}@{version}" if version else cp.tool)
    except CatalogError:
        return {}, None
    return tool.args_model.model_json_schema(), tool.args_model


def _page(
    request: Request,
    db: Session,
    state: AppState,
    user: WebUser,
    checkpoint_id: str,
    *,
    error: str = "",
    notice: str = "",
    status: int = 200,
    form_fields: list[argform.FormField] | None = None,
    review: dict[str, Any] | None = None,
    comment: str = "",
) -> HTMLResponse:
    cp = checkpoint_service.visible_checkpoint(db, state, user.principal, checkpoint_id)
    refusal = checkpoint_service.refusal_for(db, state, user.principal, cp)
    detail = checkpoint_service.detail(db, cp)
    task = task_service.detail(db, state, user.principal, cp.task_id) if can(
        state, user.principal, "task", "read_all"
    ) or cp.requester_id == user.user_id else None
    schema, _model = _tool_model(db, state, cp)
    current = detail.edited_args or detail.args
    context = {
        "cp": detail,
        "task": task,
        "names": timeline.people_names(db, user.tenant_id),
        "may_decide": refusal is None,
        "why_not": refusal.message if refusal is not None else "",
        "may_comment": cp.requester_id == user.user_id or can(state, user.principal, "checkpoint", "comment"),
        "fields": form_fields if form_fields is not None else argform.fields(schema, current),
        "editable": bool(schema.get("properties")),
        "review": review,
        "error": error,
        "notice": notice,
        "comment": comment,
    }
    return render(request, "inbox/checkpoint.html", context, status)


@router.get("/checkpoints/{checkpoint_id}", name="web_checkpoint")
def checkpoint_page(
    request: Request,
    db: SessionDep,
    state: StateDep,
    user: WebUserDep,
    checkpoint_id: str,
    notice: Annotated[str, Query(max_length=30)] = "",
) -> HTMLResponse:
    return _page(request, db, state, user, checkpoint_id, notice=NOTICES.get(notice, ""))


@router.post("/checkpoints/{checkpoint_id}/edits", name="web_checkpoint_edits")
async def review_edits(
    request: Request, db: SessionDep, state: StateDep, user: CsrfChecked, checkpoint_id: str
) -> HTMLResponse:
    """Validate the edited arguments and show the diff; nothing is decided until confirmed."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    return await run_in_threadpool(_review_edits, request, db, state, user, checkpoint_id, form)


def _review_edits(
    request: Request, db: Session, state: AppState, user: WebUser, checkpoint_id: str, form: dict[str, str]
) -> HTMLResponse:
    cp = checkpoint_service.get_checkpoint(db, user.principal, checkpoint_id)
    refusal = checkpoint_service.refusal_for(db, state, user.principal, cp)
    if refusal is not None:
        raise checkpoint_service.refused(refusal)
    schema, model = _tool_model(db, state, cp)
    if not schema.get("properties"):
        raise Unprocessable(f"A {cp.kind.replace('_', ' ')} checkpoint cannot be approved with edits.")
    current = json.loads(cp.edited_args_json or cp.args_json)
    # Only what the form can edit is compared: a budget raise carries facts nobody edits.
    original = {k: current.get(k) for k in schema["properties"]}
    edited, form_fields = argform.parse(model, argform.fields(schema, original), form)
    if edited is not None and cp.kind == "budget_raise":
        edited = _budget_raise_edit(current, edited, form_fields)
    comment = form.get("comment", "")[:2000]
    if edited is None:
        return _page(request, db, state, user, checkpoint_id, form_fields=form_fields, comment=comment,
                     error="Some edited arguments are not valid; see the messages by the fields.", status=422)
    changes = argform.diff(original, edited)
    if not changes:
        return _page(request, db, state, user, checkpoint_id, form_fields=form_fields, comment=comment,
                     error="Nothing was changed; use Approve instead, or change an argument.", status=422)
    review = {"diff": changes, "edited_json": json.dumps(edited, sort_keys=True)}
    return _page(request, db, state, user, checkpoint_id, form_fields=form_fields, review=review, comment=comment)


def _budget_raise_edit(
    current: dict[str, Any], edited: dict[str, Any], form_fields: list[argform.FormField]
) -> dict[str, Any] | None:
    """The same rule the workflow applies: a USD amount above the budget's current limit."""
    field = next(f for f in form_fields if f.name == "new_limit_usd")
    try:
        amount = to_usd(edited.get("new_limit_usd"), "the new limit")
    except BudgetError as exc:
        field.error = str(exc)
        return None
    if amount <= to_usd(current.get("limit_usd", 0)):
        field.error = f"must be above the current limit of {current.get('limit_usd')} USD"
        return None
    return {"new_limit_usd": format(amount.normalize(), "f")}


@router.post("/checkpoints/{checkpoint_id}/decision", name="web_checkpoint_decide")
async def decide(
    request: Request,
    db: SessionDep,
    state: StateDep,
    user: CsrfChecked,
    checkpoint_id: str,
    decision: Annotated[str, Form(max_length=30)],
    comment: Annotated[str, Form(max_length=2000)] = "",
    edited_args_json: Annotated[str, Form(max_length=60000)] = "",
) -> Response:
    if decision not in DECISIONS:
        raise Unprocessable(f"Unknown decision {decision!r}.")
    edited = None
    if decision == "approve_with_edits":
        try:
            edited = json.loads(edited_args_json)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise Unprocessable("The edited arguments were lost; review the edits again.") from exc
        if not isinstance(edited, dict):
            raise Unprocessable("The edited arguments must be an object; review the edits again.")
    try:
        await checkpoint_service.decide(db, state, user.principal, checkpoint_id, decision, comment, edited)
    except Pending:
        # Accepted, not recorded yet (the database is down): the same page, with a flash message.
        page = request.url_for("web_checkpoint", checkpoint_id=checkpoint_id).path
        return RedirectResponse(f"{page}?notice=accepted", 303)
    except ServiceError as exc:
        error, status = exc.detail, exc.status
    else:
        return RedirectResponse(request.url_for("web_checkpoint", checkpoint_id=checkpoint_id).path, 303)
    return await run_in_threadpool(
        lambda: _page(request, db, state, user, checkpoint_id, error=error, status=status, comment=comment)
    )


@router.post("/checkpoints/{checkpoint_id}/comments", name="web_checkpoint_comment")
def comment(
    request: Request,
    db: SessionDep,
    state: StateDep,
    user: CsrfChecked,
    checkpoint_id: str,
    body: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    if not body.strip():
        return _page(request, db, state, user, checkpoint_id, error="Write a comment first.", status=422)
    checkpoint_service.add_comment(db, state, user.principal, checkpoint_id, body.strip())
    return RedirectResponse(request.url_for("web_checkpoint", checkpoint_id=checkpoint_id).path + "#comments", 303)


@router.get("/decisions", name="web_decisions")
def decisions(request: Request, db: SessionDep, user: Reader) -> HTMLResponse:
    items = checkpoint_service.decisions_of(db, user.principal)
    return render(request, "inbox/decisions.html", {"items": items})
