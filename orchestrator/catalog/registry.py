"""A small typed registry of tools, agents and workflow definitions.

Catalog packages register into a :class:`Catalog`; the API and the workers load the same
packages (setting ``FRONTDESK_CATALOG_PACKAGES``, read by :mod:`orchestrator.catalog.loader`) so
both resolve ``name@version`` alike. An entry of that setting ending in ``.yaml``/``.yml``, or
naming a folder, holds workflow definitions in YAML (:mod:`orchestrator.catalog.yaml_defs`); they
are loaded after every package. This module is the bottom of the catalog package: yaml_defs,
validate, loader and api build on it, and it imports none of them.
At submit time the API *pins* a workflow: it snapshots the definition with every agent and tool
it references into a :class:`~orchestrator.contracts.WorkflowSpec`, which travels in the workflow input,
so a deploy that changes a definition never changes a task already in flight.
The typed developer API (``@tool``, ``agent``, ``workflow``) is in :mod:`orchestrator.catalog.api`.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from orchestrator.catalog.context import ToolContext as ToolContext  # what a tool gets; re-exported
from orchestrator.contracts import AgentSpec, SideEffect, StepSpec, ToolSpec, WorkflowSpec

Kind = Literal["workflow", "agent", "tool"]
RiskClass = Literal["low", "medium", "high"]
DataClassification = Literal["public", "internal", "confidential"]


class ToolFailure(Exception):
    """Raised by a tool for a business-level failure the model should be told about (not retried)."""


class CatalogError(ValueError):
    """A definition refers to something that is not registered, or is registered twice."""


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
    risk_class: RiskClass = "low"
    data_classification: DataClassification = "internal"
    input_schema: dict[str, Any] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    max_task_turns: int = 24
    default_budget_usd: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def step_refs(step: StepSpec) -> tuple[list[str], list[str]]:
    """The agents and the tools one step names itself (not those of its agents)."""
    agents = [step.agent] if step.kind in ("agent", "planner") and step.agent else []
    if step.kind == "planner":
        agents += step.planner_agents
    return agents, [step.tool] if step.kind == "tool" and step.tool else []


def agent_refs(spec: AgentSpec) -> list[str]:
    """Other agents an agent relies on (its judge)."""
    v = spec.validator
    return [v.judge_agent] if v is not None and v.kind == "judge" and v.judge_agent else []


@dataclass
class Catalog:
    tools: dict[str, RegisteredTool] = field(default_factory=dict)
    agents: dict[str, RegisteredAgent] = field(default_factory=dict)
    workflows: dict[str, WorkflowDefinition] = field(default_factory=dict)
    output_models: dict[str, type[BaseModel]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # ref -> the package or YAML file
    origin: str = field(default="", repr=False)  # what is registering now (set by load_catalog)

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
        schema = json_schema(args_model, f"tool {name}@{version}: argument model")
        spec = ToolSpec(
            name=name,
            version=version,
            description=description,
            side_effect=side_effect,
            args_schema=schema,
            cost_usd=cost_usd,
        )
        self._put(self.tools, spec.ref, name, RegisteredTool(spec, args_model, impl))
        return self.tools[spec.ref]

    def add_agent(self, *, output_model: type[BaseModel], **fields: Any) -> RegisteredAgent:
        model_key = f"{output_model.__module__}.{output_model.__qualname__}"
        label = f"agent {fields.get('name')}@{fields.get('version')}: output model {model_key}"
        spec = AgentSpec(output_model=model_key, output_schema=json_schema(output_model, label), **fields)
        self.output_models[model_key] = output_model
        self._put(self.agents, spec.ref, spec.name, RegisteredAgent(spec, output_model))
        return self.agents[spec.ref]

    def add_workflow(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        self._put(self.workflows, f"{definition.name}@{definition.version}", definition.name, definition)
        return definition

    def _put(self, table: dict[str, Any], ref: str, name: str, value: Any) -> None:
        if ref in table:
            where = f" (first by {self.sources[ref]})" if self.sources.get(ref) else ""
            raise CatalogError(f"{ref} is registered twice{where}")
        table[ref] = value
        table[name] = table[self._latest(table, name)]  # a bare name means the highest version
        if self.origin:
            self.sources[ref] = self.origin

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
            if not known:
                raise CatalogError(
                    f"unknown workflow {ref!r}: no workflow is registered; "
                    "name your catalog packages in FRONTDESK_CATALOG_PACKAGES"
                ) from None
            raise CatalogError(f"unknown workflow {ref!r}; known: {', '.join(known)}") from None

    def workflow_refs(self) -> list[str]:
        return sorted(r for r in self.workflows if "@" in r)

    def _table(self, kind: Kind) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]]
        tables = {"workflow": self.workflows, "agent": self.agents, "tool": self.tools}
        return tables[kind]

    def refs(self, kind: Kind) -> list[str]:
        """Every `name@version` of one kind, by name then version."""
        return sorted((r for r in self._table(kind) if "@" in r), key=_ref_key)

    def versions(self, name: str, kind: Kind | None = None) -> list[str]:
        """The registered versions of `name` (a tool, agent or workflow), oldest first."""
        name = name.split("@", 1)[0]
        kinds: tuple[Kind, ...] = (kind,) if kind else ("workflow", "agent", "tool")
        found = {r.split("@", 1)[1] for k in kinds for r in self._table(k) if r.startswith(f"{name}@")}
        return sorted(found, key=lambda v: (_version_key(v), v))

    def kind_of(self, ref: str) -> Kind | None:
        """What `ref` names (a workflow first, then an agent, then a tool); None if nothing."""
        for kind in ("workflow", "agent", "tool"):
            if ref in self._table(kind):
                return kind
        return None

    def resolve(self, kind: Kind, ref: str) -> str:
        """The full `name@version` a (possibly bare) reference means now; `ref` if unknown."""
        value = self._table(kind).get(ref)
        if value is None:
            return ref
        full: str = value.ref if kind == "workflow" else value.spec.ref
        return full

    def used_by(self, ref: str) -> list[str]:
        """The agents and workflows that name a tool or an agent (at any spelling of its ref)."""
        kind: Kind = "agent" if ref in self.agents else "tool"
        full = self.resolve(kind, ref)
        users: set[str] = set()
        for agent_ref in self.refs("agent"):
            spec = self.agents[agent_ref].spec
            named = spec.tools if kind == "tool" else agent_refs(spec)
            if any(self.resolve(kind, r) == full for r in named):
                users.add(agent_ref)
        for wf_ref in self.workflow_refs():
            for step in self.workflows[wf_ref].steps:
                named = step_refs(step)[0 if kind == "agent" else 1]
                if any(self.resolve(kind, r) == full for r in named):
                    users.add(wf_ref)
        return sorted(users, key=_ref_key)

    def pin(self, ref: str) -> WorkflowSpec:
        """Snapshot a workflow with every agent and tool it uses, at their current versions.

        `agents` holds every agent a step, a planner or a judge names (keyed as named), `tools`
        every tool those agents may ask for and every tool step's tool (keyed by tool name)."""
        wf = self.workflow(ref)
        agents: dict[str, AgentSpec] = {}
        tools: dict[str, ToolSpec] = {}
        pending: list[str] = []
        for step in wf.steps:
            step_agents, step_tools = step_refs(step)
            pending += step_agents
            for tool_ref in step_tools:
                tools[tool_ref.split("@", 1)[0]] = self.tool(tool_ref).spec
        while pending:
            agent_ref = pending.pop(0)
            if agent_ref in agents:
                continue
            agent = agents[agent_ref] = self.agent(agent_ref).spec
            for tool_ref in agent.tools:
                tools[tool_ref.split("@", 1)[0]] = self.tool(tool_ref).spec
            pending += agent_refs(agent)
        return WorkflowSpec(
            name=wf.name,
            version=wf.version,
            description=wf.description,
            category=wf.category,
            risk_class=wf.risk_class,
            data_classification=wf.data_classification,
            input_schema=wf.input_schema,
            examples=wf.examples,
            steps=wf.steps,
            agents=agents,
            tools=tools,
            max_task_turns=wf.max_task_turns,
            default_budget_usd=wf.default_budget_usd,
        )

    # -- versions ------------------------------------------------------------------------------
    def diff(self, ref_a: str, ref_b: str) -> list[str]:
        """Human-readable differences between two versions of a workflow (with the agents and
        tools each pins), or of an agent, or of a tool. Empty when they are the same."""
        kind_a, kind_b = self.kind_of(ref_a), self.kind_of(ref_b)
        if kind_a is None or kind_b is None:
            missing = ref_a if kind_a is None else ref_b
            raise CatalogError(f"unknown workflow, agent or tool {missing!r}")
        if kind_a != kind_b:
            raise CatalogError(f"cannot compare {kind_a} {ref_a} with {kind_b} {ref_b}")
        if kind_a == "workflow":
            return _diff_workflows(self.pin(ref_a), self.pin(ref_b))
        if kind_a == "agent":
            a, b = self.agent(ref_a).spec, self.agent(ref_b).spec
            return _diff_agent(a, b, f"agent {a.name}")
        x, y = self.tool(ref_a).spec, self.tool(ref_b).spec
        return _diff_tool(x, y, f"tool {x.name}")


def json_schema(model: type[BaseModel], label: str) -> dict[str, Any]:
    try:
        return model.model_json_schema()
    except Exception as exc:
        raise CatalogError(f"{label} does not serialize to a JSON schema: {exc}") from exc


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _ref_key(ref: str) -> tuple[str, tuple[int, ...], str]:
    name, _, version = ref.partition("@")
    return name, _version_key(version), version


# --- differences ---------------------------------------------------------------------------------


def _changed(out: list[str], label: str, a: Any, b: Any) -> None:
    if a != b:
        out.append(f"{label}: {a!r} -> {b!r}")


def _added_removed(out: list[str], label: str, a: list[Any], b: list[Any]) -> None:
    out += [f"{label}: + {x!r}" for x in b if x not in a]
    out += [f"{label}: - {x!r}" for x in a if x not in b]


def _schema_change(a: dict[str, Any], b: dict[str, Any]) -> str:
    props_a, props_b = a.get("properties", {}), b.get("properties", {})
    parts = [f"+ field {k!r}" for k in props_b if k not in props_a]
    parts += [f"- field {k!r}" for k in props_a if k not in props_b]
    parts += [f"field {k!r} changed" for k in props_a if k in props_b and props_a[k] != props_b[k]]
    if set(a.get("required", [])) != set(b.get("required", [])):
        parts.append(f"required {sorted(a.get('required', []))} -> {sorted(b.get('required', []))}")
    return ", ".join(parts) or "nested definitions or constraints changed"


def _diff_workflows(a: WorkflowSpec, b: WorkflowSpec) -> list[str]:
    out: list[str] = []
    for name in ("description", "category", "risk_class", "data_classification", "max_task_turns"):
        _changed(out, name, getattr(a, name), getattr(b, name))
    _changed(out, "default budget (USD)", a.default_budget_usd, b.default_budget_usd)
    if a.input_schema != b.input_schema:
        out.append(f"input schema: {_schema_change(a.input_schema, b.input_schema)}")
    _added_removed(out, "example", a.examples, b.examples)
    steps_a, steps_b = {s.name: s for s in a.steps}, {s.name: s for s in b.steps}
    out += [f"step {n}: removed" for n in steps_a if n not in steps_b]
    for name, step in steps_b.items():
        if name not in steps_a:
            what = step.agent or step.tool or step.review
            out.append(f"step {name}: added ({step.kind}{' ' + what if what else ''})")
            continue
        old, new = steps_a[name].model_dump(), step.model_dump()
        out += [f"step {name}: {k} {old[k]!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
    common_a = [n for n in steps_a if n in steps_b]
    common_b = [n for n in steps_b if n in steps_a]
    if common_a != common_b:
        out.append(f"steps: order {', '.join(common_a)} -> {', '.join(common_b)}")
    agents_a = {s.name: s for s in a.agents.values()}
    agents_b = {s.name: s for s in b.agents.values()}
    out += [f"agent {n}: no longer used ({s.ref})" for n, s in agents_a.items() if n not in agents_b]
    out += [f"agent {n}: newly used ({s.ref})" for n, s in agents_b.items() if n not in agents_a]
    for name in [n for n in agents_a if n in agents_b]:
        out += _diff_agent(agents_a[name], agents_b[name], f"agent {name}")
    out += [f"tool {n}: no longer used ({s.ref})" for n, s in a.tools.items() if n not in b.tools]
    out += [f"tool {n}: newly used ({s.ref})" for n, s in b.tools.items() if n not in a.tools]
    for name in [n for n in a.tools if n in b.tools]:
        out += _diff_tool(a.tools[name], b.tools[name], f"tool {name}")
    return out


def _diff_agent(a: AgentSpec, b: AgentSpec, label: str) -> list[str]:
    out: list[str] = []
    _changed(out, f"{label}: version", a.version, b.version)
    if a.instructions != b.instructions:
        out.append(f"{label}: instructions changed")
        lines = difflib.unified_diff(a.instructions.splitlines(), b.instructions.splitlines(), n=0)
        out += [f"    {line}" for line in lines if not line.startswith(("---", "+++", "@@"))]
    if a.ladder != b.ladder:
        out.append(f"{label}: tier ladder {' > '.join(a.ladder)} -> {' > '.join(b.ladder)}")
    _added_removed(out, f"{label}: tool", a.tools, b.tools)
    _changed(out, f"{label}: output model", a.output_model, b.output_model)
    if a.output_schema != b.output_schema:
        out.append(f"{label}: output schema: {_schema_change(a.output_schema, b.output_schema)}")
    va = a.validator.model_dump() if a.validator else None
    vb = b.validator.model_dump() if b.validator else None
    _changed(out, f"{label}: validator", va, vb)
    for name in ("review_role", "max_turns", "max_tokens", "step_budget_usd"):
        _changed(out, f"{label}: {name}", getattr(a, name), getattr(b, name))
    return out


def _diff_tool(a: ToolSpec, b: ToolSpec, label: str) -> list[str]:
    out: list[str] = []
    for name in ("version", "side_effect", "description", "cost_usd"):
        _changed(out, f"{label}: {name}", getattr(a, name), getattr(b, name))
    if a.args_schema != b.args_schema:
        out.append(f"{label}: argument schema: {_schema_change(a.args_schema, b.args_schema)}")
    return out
