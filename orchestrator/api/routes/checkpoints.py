"""/api/checkpoints: the approver's inbox, one checkpoint, decisions, reassignment, comments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import col, select

from orchestrator.api.deps import Allowed, CurrentUser, SessionDep, StateDep
from orchestrator.api.errors import PROBLEMS, problem
from orchestrator.models import Checkpoint
from orchestrator.services import checkpoints as service
from orchestrator.services.access import Principal
from orchestrator.services.checkpoint_updates import NotAccepted, Pending
from orchestrator.services.schemas import (
    CheckpointDetail,
    CheckpointList,
    CheckpointPublic,
    CommentIn,
    DecisionIn,
    MyDecisionList,
    ReassignIn,
)

router = APIRouter(prefix="/api/checkpoints", tags=["checkpoints"], responses=PROBLEMS)


class AcceptedOut(BaseModel):
    """A decision or reassignment the task accepted but could not record yet (the database is
    down): it is recorded when the database is back. Look at `Location` after `Retry-After`."""

    status: str = "accepted"
    checkpoint_id: str
    detail: str
    retry_after: int


PENDING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": AcceptedOut,
        "description": "Accepted by the task, not recorded yet (database unreachable); recorded when it "
        "is back. Headers: Location (the checkpoint), Retry-After.",
    }
}


def _accepted(pending: Pending) -> JSONResponse:
    body = AcceptedOut(checkpoint_id=pending.checkpoint_id, detail=pending.detail, retry_after=pending.retry_after)
    headers = {"Retry-After": str(pending.retry_after), "Location": f"/api/checkpoints/{pending.checkpoint_id}"}
    return JSONResponse(body.model_dump(), status_code=202, headers=headers)


def _not_taken(exc: NotAccepted) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)}
    return problem(exc.status, exc.title, exc.detail, headers=headers, **exc.extra)


@router.get("", response_model=CheckpointList, summary="List checkpoints (oldest first)")
def list_checkpoints(
    session: SessionDep,
    user: Annotated[Principal, Depends(Allowed("checkpoint", "read"))],
    status: str | None = Query(None, pattern="^(open|approved|rejected|changes_requested|cancelled)$"),
    mine: bool = Query(False, description="only checkpoints I may decide (my roles, or named)"),
    limit: int = Query(100, ge=1, le=500),
) -> CheckpointList:
    query = select(Checkpoint).where(Checkpoint.tenant_id == user.tenant_id)
    if status:
        query = query.where(Checkpoint.status == status)
    if mine:
        query = query.where(*service.inbox_filter(user))
    rows = session.exec(query.order_by(col(Checkpoint.created_at)).limit(limit)).all()
    return CheckpointList(items=[CheckpointPublic.build(c) for c in rows])


@router.get("/decisions/mine", response_model=MyDecisionList, summary="My decisions, newest first")
def my_decisions(
    session: SessionDep, user: Annotated[Principal, Depends(Allowed("checkpoint", "read"))]
) -> MyDecisionList:
    return MyDecisionList(items=service.decisions_of(session, user))


@router.get(
    "/{checkpoint_id}", response_model=CheckpointDetail, summary="One checkpoint, with decisions and comments"
)
def get_checkpoint(
    checkpoint_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> CheckpointDetail:
    return service.detail(session, service.visible_checkpoint(session, state, user, checkpoint_id))


@router.post(
    "/{checkpoint_id}/decision", response_model=CheckpointPublic, responses=PENDING, summary="Decide a checkpoint"
)
async def decide(
    checkpoint_id: str,
    body: DecisionIn,
    session: SessionDep,
    state: StateDep,
    user: Annotated[Principal, Depends(Allowed("checkpoint", "read"))],
) -> CheckpointPublic | JSONResponse:
    """`approve`, `reject`, `approve_with_edits` (with `edited_args`, validated against the tool's
    argument model and re-authorized; the diff is recorded) or `request_changes` (back to the agent
    with the comment). A decided checkpoint answers 409; the task's requester, or anyone the
    checkpoint is not assigned to, 403; refused edits 422. Not recorded within
    FRONTDESK_DECISION_WAIT_SECONDS: 202 when the task accepted it (recorded when the database is
    back; sending it again is recognised), 503 with Retry-After when the task did not take it."""
    try:
        cp = await service.decide(
            session, state, user, checkpoint_id, body.decision, body.comment, body.edited_args
        )
    except Pending as pending:
        return _accepted(pending)
    except NotAccepted as exc:
        return _not_taken(exc)
    return CheckpointPublic.build(cp)


@router.post(
    "/{checkpoint_id}/reassign", response_model=CheckpointPublic, responses=PENDING, summary="Reassign (admins)"
)
async def reassign(
    checkpoint_id: str,
    body: ReassignIn,
    session: SessionDep,
    state: StateDep,
    user: Annotated[Principal, Depends(Allowed("checkpoint", "reassign"))],
) -> CheckpointPublic | JSONResponse:
    """202 or 503 as for decisions when the reassignment is not recorded within the bound."""
    try:
        cp = await service.reassign(
            session, state, user, checkpoint_id, body.assignee_role, body.named_approvers, body.comment
        )
    except Pending as pending:
        return _accepted(pending)
    except NotAccepted as exc:
        return _not_taken(exc)
    return CheckpointPublic.build(cp)


@router.post("/{checkpoint_id}/comments", status_code=201, response_model=CheckpointDetail, summary="Comment")
def comment(
    checkpoint_id: str, body: CommentIn, session: SessionDep, state: StateDep, user: CurrentUser
) -> CheckpointDetail:
    service.add_comment(session, state, user, checkpoint_id, body.body)
    return service.detail(session, service.get_checkpoint(session, user, checkpoint_id))
