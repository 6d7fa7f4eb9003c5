"""/api/policies: the tool policy in force (rules, approval settings, version) and explain.

The views are built by `orchestrator.services.policies` (shared with the /admin/policies page).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from orchestrator.api.deps import Allowed, SessionDep, StateDep
from orchestrator.api.errors import PROBLEMS
from orchestrator.services.access import Principal
from orchestrator.services.policies import (
    ExplainPublic,
    ExplainRequest,
    PoliciesPublic,
    explain_decision,
    policies_public,
)

router = APIRouter(prefix="/api", tags=["policies"], responses=PROBLEMS)


@router.get("/policies", response_model=PoliciesPublic, summary="The tool policy in force")
def get_policies(
    state: StateDep, user: Annotated[Principal, Depends(Allowed("policy", "read"))]
) -> PoliciesPublic:
    return policies_public(state, user.tenant_id)


@router.post("/policies/explain", response_model=ExplainPublic, summary="Explain a tool decision")
def explain(
    body: ExplainRequest,
    state: StateDep,
    session: SessionDep,
    user: Annotated[Principal, Depends(Allowed("policy", "explain"))],
) -> ExplainPublic:
    return explain_decision(state, session, user.tenant_id, body)
