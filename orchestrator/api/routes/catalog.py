"""/api/workflows: the registered workflow definitions (the catalog API grows from here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from orchestrator.api.deps import Allowed, CurrentUser, Principal, StateDep
from orchestrator.api.errors import NotFound
from orchestrator.api.schemas import Me, WorkflowPublic
from workers.catalog.registry import CatalogError

router = APIRouter(prefix="/api", tags=["catalog"])


def _public(state: StateDep, ref: str) -> WorkflowPublic:
    spec = state.catalog.pin(ref)
    return WorkflowPublic(
        ref=spec.ref,
        name=spec.name,
        version=spec.version,
        description=spec.description,
        category=spec.category,
        risk_class=spec.risk_class,
        data_classification=spec.data_classification,
        steps=[s.model_dump() for s in spec.steps],
        agents=[a.ref for a in spec.agents.values()],
        tools=[
            {"ref": t.ref, "side_effect": t.side_effect, "description": t.description}
            for t in spec.tools.values()
        ],
        examples=spec.examples,
    )


@router.get("/workflows", response_model=list[WorkflowPublic], summary="Workflow definitions")
def list_workflows(
    state: StateDep, _: Annotated[Principal, Depends(Allowed("catalog", "read"))]
) -> list[WorkflowPublic]:
    return [_public(state, ref) for ref in state.catalog.workflow_refs()]


@router.get("/workflows/{ref}", response_model=WorkflowPublic, summary="One workflow definition")
def get_workflow(
    ref: str, state: StateDep, _: Annotated[Principal, Depends(Allowed("catalog", "read"))]
) -> WorkflowPublic:
    try:
        return _public(state, ref)
    except CatalogError as exc:
        raise NotFound(str(exc)) from exc


@router.get("/me", response_model=Me, summary="Who am I")
def me(user: CurrentUser) -> Me:
    return Me(
        user_id=user.user_id,
        email=user.email,
        name=user.name,
        tenant_id=user.tenant_id,
        roles=list(user.roles),
    )
