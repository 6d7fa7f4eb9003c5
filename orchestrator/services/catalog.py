"""The catalog as people read it: workflows pinned with their agents and tools, agents, and tools
with the policy rules that name them. Shared by the REST API (/api/workflows, /api/agents,
/api/tools) and the catalog web pages.

A `ref` is `name@version`; a bare name means the newest version.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validate import policy_mentions
from orchestrator.services.policies import applies_in
from orchestrator.services.schemas import WorkflowPublic
from orchestrator.services.state import AppState


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
