"""The catalog API: workflow definitions, agents and tools with their versions (catalog:read).

GET /api/workflows[/{ref}]   a workflow pinned with the agents and tools it uses
GET /api/agents[/{ref}]      agents: instructions, tier ladder, tools, validator, output schema
GET /api/tools[/{ref}]       tools: side effect, argument schema, the policy rules that name it
GET /api/me                  who am I

A `ref` is `name@version`; a bare name means the newest version. Lists hold every version.
The builders (`workflow_info`, `agent_info`, `tool_info`) also serve the catalog web pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from orchestrator.api.deps import Allowed, CurrentUser, StateDep
from orchestrator.api.errors import NotFound
from orchestrator.api.routes.policies import applies_in
from orchestrator.catalog.registry import Catalog, CatalogError
from orchestrator.catalog.validate import policy_mentions
from orchestrator.services.access import Principal
from orchestrator.services.schemas import Me, WorkflowPublic
from orchestrator.services.state import AppState

router = APIRouter(prefix="/api", tags=["catalog"])
CatalogReader = Annotated[Principal, Depends(Allowed("catalog", "read"))]


class WorkflowInfo(WorkflowPublic):
    versions: list[str]
    input_schema: dict[str, Any]
    default_budget_usd: str | None
    max_task_turns: int


class AgentPublic(BaseModel):
    ref: str
    name: str
    version: str
    versions: list[str]
    instructions: str
    tier: str
    ladder: list[str]
    tools: list[str]
    validator: dict[str, Any] | None
    review_role: str
    max_turns: int
    max_tokens: int
    step_budget_usd: str | None
    output_model: str
    output_schema: dict[str, Any]
    used_by: list[str]


class ToolPublic(BaseModel):
    ref: str
    name: str
    version: str
    versions: list[str]
    description: str
    side_effect: str
    args_schema: dict[str, Any]
    cost_usd: str | None
    policies: list[str]  # ids of the tool-policy rules that name this tool
    policy_version: str
    used_by: list[str]


def workflow_info(state: AppState, ref: str) -> WorkflowInfo:
    spec = state.catalog.pin(ref)
    return WorkflowInfo(
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
        versions=state.catalog.versions(spec.name, "workflow"),
        input_schema=spec.input_schema,
        default_budget_usd=spec.default_budget_usd,
        max_task_turns=spec.max_task_turns,
    )


def agent_info(catalog: Catalog, ref: str) -> AgentPublic:
    spec = catalog.agent(ref).spec
    return AgentPublic(
        **spec.model_dump(exclude={"tiers", "validator"}),
        ref=spec.ref,
        versions=catalog.versions(spec.name, "agent"),
        ladder=spec.ladder,
        validator=spec.validator.model_dump() if spec.validator else None,
        used_by=catalog.used_by(spec.ref),
    )


def tool_info(state: AppState, ref: str, tenant_id: str) -> ToolPublic:
    """A tool with the ids of the rules that name it, as `tenant_id` sees them (never another
    tenant's own rules)."""
    catalog = state.catalog
    spec = catalog.tool(ref).spec
    view = state.policy.view()
    return ToolPublic(
        **spec.model_dump(),
        ref=spec.ref,
        versions=catalog.versions(spec.name, "tool"),
        policies=policy_mentions([r for r in view.rules if applies_in(r, tenant_id)], spec.name),
        policy_version=view.version,
        used_by=catalog.used_by(spec.ref),
    )


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
