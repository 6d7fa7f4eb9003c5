"""A small typed registry of tools, agents and workflow definitions.

Catalog packages register into a :class:`Catalog`; the API and the workers load the same
packages (setting ``FRONTDESK_CATALOG_PACKAGES``) so both resolve ``name@version`` alike.
At submit time the API *pins* a workflow: it snapshots the definition with every agent and tool
it references into a :class:`~workers.domain.WorkflowSpec`, which travels in the workflow input,
so a deploy that changes a definition never changes a task already in flight.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from workers.domain import AgentSpec, SideEffect, StepSpec, ToolSpec, WorkflowSpec


class ToolFailure(Exception):
    """Raised by a tool for a business-level failure the model should be told about (not retried)."""


class CatalogError(ValueError):
    """A definition refers to something that is not registered, or is registered twice."""


@dataclass(frozen=True)
class ToolContext:
    """What a tool implementation may use; built by the worker for every run."""

    tenant_id: str
    task_id: str
    idempotency_key: str
    engine: Any  # sqlalchemy Engine
    settings: Any
    heartbeat: Callable[..., None]


ToolImpl = Callable[[Any, ToolContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class RegisteredTool:
    spec: ToolSpec
    args_model: type[BaseModel]
    impl: ToolImpl


@dataclass(frozen=True)
class RegisteredAgent:
    spec: AgentSpec
    output_model: type[BaseModel]


@dataclass
class WorkflowDefinition:
    name: str
    version: str
    description: str
    steps: list[StepSpec]
    category: str = "general"
    risk_class: str = "low"
    data_classification: str = "internal"
    input_schema: dict[str, Any] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    max_task_turns: int = 24
    default_budget_usd: str | None = None


@dataclass
class Catalog:
    tools: dict[str, RegisteredTool] = field(default_factory=dict)
    agents: dict[str, RegisteredAgent] = field(default_factory=dict)
    workflows: dict[str, WorkflowDefinition] = field(default_factory=dict)
    output_models: dict[str, type[BaseModel]] = field(default_factory=dict)

    # -- registration ---------------------------------------------------------------------------
    def add_tool(
        self,
        name: str,
        version: str,
        *,
        description: str,
        side_effect: SideEffect,
        args_model: type[BaseModel],
        impl: ToolImpl,
        cost_usd: str | None = None,
    ) -> RegisteredTool:
        spec = ToolSpec(
            name=name,
            version=version,
            description=description,
            side_effect=side_effect,
            args_schema=args_model.model_json_schema(),
            cost_usd=cost_usd,
        )
        self._put(self.tools, spec.ref, name, RegisteredTool(spec, args_model, impl))
        return self.tools[spec.ref]

    def add_agent(self, *, output_model: type[BaseModel], **fields: Any) -> RegisteredAgent:
        model_key = f"{output_model.__module__}.{output_model.__qualname__}"
        spec = AgentSpec(output_model=model_key, output_schema=output_model.model_json_schema(), **fields)
        self.output_models[model_key] = output_model
        self._put(self.agents, spec.ref, spec.name, RegisteredAgent(spec, output_model))
        return self.agents[spec.ref]

    def add_workflow(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        self._put(self.workflows, f"{definition.name}@{definition.version}", definition.name, definition)
        return definition

    def _put(self, table: dict[str, Any], ref: str, name: str, value: Any) -> None:
        if ref in table:
            raise CatalogError(f"{ref} is registered twice")
        table[ref] = value
        table[name] = table[self._latest(table, name)]  # a bare name means the highest version

    @staticmethod
    def _latest(table: dict[str, Any], name: str) -> str:
        versions = [ref.split("@", 1)[1] for ref in table if ref.startswith(f"{name}@")]
        return f"{name}@{max(versions, key=_version_key)}"

    # -- lookup ---------------------------------------------------------------------------------
    def tool(self, ref: str) -> RegisteredTool:
        try:
            return self.tools[ref]
        except KeyError:
            raise CatalogError(f"unknown tool {ref!r}") from None

    def agent(self, ref: str) -> RegisteredAgent:
        try:
            return self.agents[ref]
        except KeyError:
            raise CatalogError(f"unknown agent {ref!r}") from None

    def workflow(self, ref: str) -> WorkflowDefinition:
        try:
            return self.workflows[ref]
        except KeyError:
            known = sorted({r for r in self.workflows if "@" in r})
            raise CatalogError(f"unknown workflow {ref!r}; known: {', '.join(known)}") from None

    def workflow_refs(self) -> list[str]:
        return sorted(r for r in self.workflows if "@" in r)

    def pin(self, ref: str) -> WorkflowSpec:
        """Snapshot a workflow with every agent and tool it uses, at their current versions."""
        wf = self.workflow(ref)
        agents: dict[str, AgentSpec] = {}
        tools: dict[str, ToolSpec] = {}
        for step in wf.steps:
            agent = self.agent(step.agent).spec
            agents[step.agent] = agent
            for tool_ref in agent.tools:
                tools[tool_ref.split("@", 1)[0]] = self.tool(tool_ref).spec
        return WorkflowSpec(
            name=wf.name,
            version=wf.version,
            description=wf.description,
            category=wf.category,
            risk_class=wf.risk_class,  # type: ignore[arg-type]
            data_classification=wf.data_classification,  # type: ignore[arg-type]
            input_schema=wf.input_schema,
            examples=wf.examples,
            steps=wf.steps,
            agents=agents,
            tools=tools,
            max_task_turns=wf.max_task_turns,
            default_budget_usd=wf.default_budget_usd,
        )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def load_catalog(packages: list[str]) -> Catalog:
    """Import each catalog package and let it register into one catalog."""
    catalog = Catalog()
    for name in packages:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if register is None:
            raise CatalogError(f"catalog package {name!r} has no register(catalog) function")
        register(catalog)
    return catalog
