"""/api/checkpoints: the approver's inbox and decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import select

from orchestrator import task_service
from orchestrator.api.deps import Allowed, Principal, SessionDep, StateDep
from orchestrator.api.schemas import CheckpointList, CheckpointPublic, DecisionIn
from orchestrator.models import Checkpoint

router = APIRouter(prefix="/api/checkpoints", tags=["checkpoints"])


@router.get("", response_model=CheckpointList, summary="List checkpoints (oldest first)")
def list_checkpoints(
    session: SessionDep,
    user: Annotated[Principal, Depends(Allowed("checkpoint", "read"))],
    status: str | None = Query(None, pattern="^(open|approved|rejected|cancelled)$"),
    limit: int = Query(100, ge=1, le=500),
) -> CheckpointList:
    query = select(Checkpoint).where(Checkpoint.tenant_id == user.tenant_id)
    if status:
        query = query.where(Checkpoint.status == status)
    rows = session.exec(query.order_by(Checkpoint.created_at).limit(limit)).all()  # type: ignore[arg-type]
    return CheckpointList(items=[CheckpointPublic.build(c) for c in rows])


@router.post("/{checkpoint_id}/decision", response_model=CheckpointPublic, summary="Approve or reject")
async def decide(
    checkpoint_id: str,
    body: DecisionIn,
    session: SessionDep,
    state: StateDep,
    user: Annotated[Principal, Depends(Allowed("checkpoint", "read"))],
) -> CheckpointPublic:
    """One decision per checkpoint: a second answers 409; the task's requester, or anyone without
    the approver role, answers 403."""
    cp = await task_service.decide(session, state, user, checkpoint_id, body.decision, body.comment)
    return CheckpointPublic.build(cp)
