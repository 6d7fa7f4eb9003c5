"""/api/model-calls: router requests as the books hold them; reconcile interrupted ones (admins)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from orchestrator.api.deps import Allowed, SessionDep
from orchestrator.api.errors import PROBLEMS
from orchestrator.services import model_calls as service
from orchestrator.services.access import Principal

router = APIRouter(prefix="/api/model-calls", tags=["model calls"], responses=PROBLEMS)


class ModelCallList(BaseModel):
    items: list[service.ModelCallRow]


class ReconcileIn(BaseModel):
    cost_usd: Decimal | None = Field(None, ge=0, le=Decimal("1000000"), description="from the router's logs")
    tokens_in: int | None = Field(None, ge=0, le=service.MAX_TOKENS)
    tokens_out: int | None = Field(None, ge=0, le=service.MAX_TOKENS)
    note: str = Field("", max_length=500)
    not_billed: bool = Field(False, description="the router's logs show it never reached a provider")


@router.get("", response_model=ModelCallList, summary="Model calls of my tenant, newest first (admins)")
def list_model_calls(
    session: SessionDep,
    user: Annotated[Principal, Depends(Allowed("cost", "read"))],
    status: str | None = Query(None, pattern="^(sent|done|interrupted|reconciled)$"),
    task: str | None = Query(None, max_length=40),
    limit: int = Query(200, ge=1, le=1000),
) -> ModelCallList:
    rows = service.list_calls(session, tenant_id=user.tenant_id, status=status, task_id=task, limit=limit)
    return ModelCallList(items=rows)


@router.post(
    "/{call_id}/reconcile", response_model=service.Reconciled, summary="Reconcile an interrupted call (admins)"
)
def reconcile(
    call_id: str,
    body: ReconcileIn,
    session: SessionDep,
    user: Annotated[Principal, Depends(Allowed("budget", "write"))],
) -> service.Reconciled:
    """Set the real cost (and tokens) of a call left `interrupted` by a worker that died, or mark it
    `not_billed`: the task's cost, the tenant's budgets and the audit trail follow. 404 another
    tenant's call, 409 a call that is not interrupted, 422 no cost given."""
    done = service.reconcile(
        session,
        actor=f"user:{user.user_id}",
        call_id=call_id,
        tenant_id=user.tenant_id,
        cost_usd=body.cost_usd,
        tokens_in=body.tokens_in,
        tokens_out=body.tokens_out,
        note=body.note,
        not_billed=body.not_billed,
    )
    session.commit()
    return done
