"""The catalog API: workflow definitions, agents and tools with their versions (catalog:read).

GET /api/workflows[/{ref}]   a workflow pinned with the agents and tools it uses
GET /api/agents[/{ref}]      agents: instructions, tier ladder, tools, validator, output schema
GET /api/tools[/{ref}]       tools: side effect, argument schema, the policy rules that name it
GET /api/me                  who am I

A `ref` is `name@version`; a bare name means the newest version. Lists hold every version.
The views are built by `orchestrator.services.catalog` (shared with the catalog web pages).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from orchestrator.api.deps import Allowed, CurrentUser, StateDep
from orchestrator.api.errors import PROBLEMS, NotFound
from orchestrator.catalog.registry import CatalogError
from orchestrator.services.access import Principal
from orchestrator.services.catalog import (
    AgentPublic,
    ToolPublic,
    WorkflowInfo,
    agent_info,
    tool_info,
    workflow_info,
)
from orchestrator.services.schemas import Me

router = APIRouter(prefix="/api", tags=["catalog"], responses=PROBLEMS)
CatalogReader = Annotated[Principal, Depends(Allowed("catalog", "read"))]


@router.get("/workflows", response_model=list[WorkflowInfo], summary="Workflow definitions")
def list_workflows(state: StateDep, _: CatalogReader) -> list[WorkflowInfo]:
    return [workflow_info(state, ref) for ref in state.catalog.workflow_refs()]


@router.get("/workflows/{ref}", response_model=WorkflowInfo, summary="One workflow definition")
def get_workflow(ref: str, state: StateDep, _: CatalogReader) -> WorkflowInfo:
    try:
        return workflow_info(state, ref)
    except CatalogError as exc:
        raise NotFound(str(exc)) from exc


@router.get("/agents", response_model=list[AgentPublic], summary="Agents, every version")
def list_agents(state: StateDep, _: CatalogReader) -> list[AgentPublic]:
    return [agent_info(state.catalog, ref) for ref in state.catalog.refs("agent")]


@router.get("/agents/{ref}", response_model=AgentPublic, summary="One agent")
def get_agent(ref: str, state: StateDep, _: CatalogReader) -> AgentPublic:
    try:
        return agent_info(state.catalog, ref)
    except CatalogError as exc:
        raise NotFound(str(exc)) from exc


@router.get("/tools", response_model=list[ToolPublic], summary="Tools, every version")
def list_tools(state: StateDep, user: CatalogReader) -> list[ToolPublic]:
    return [tool_info(state, ref, user.tenant_id) for ref in state.catalog.refs("tool")]


@router.get("/tools/{ref}", response_model=ToolPublic, summary="One tool")
def get_tool(ref: str, state: StateDep, user: CatalogReader) -> ToolPublic:
    try:
        return tool_info(state, ref, user.tenant_id)
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
