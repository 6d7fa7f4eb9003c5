"""The typed developer API for catalog packages, built on :class:`~orchestrator.catalog.registry.Catalog`.

    from orchestrator.catalog.api import CatalogModule, ToolContext, agent_step, checkpoint_step

    catalog = CatalogModule()

    @catalog.tool(side_effect="read")
    async def lookup_order(args: LookupOrderArgs, ctx: ToolContext) -> dict:
        \"\"\"Look up an order by its number.\"\"\"  # the description the model sees
        ...

    refunds = catalog.agent("refund_agent", "1", instructions="...", tiers=["tier-slm", "tier-frontier"],
                            tools=[lookup_order], output_model=RefundDecision)
    catalog.workflow("refund_request", "1", description="...", examples=[...],
                     steps=[agent_step("handle", refunds), checkpoint_step("review")])
    register = catalog.register  # the package's register(catalog)

`@tool`, `agent(...)` and `workflow(...)` also work on their own; `register(catalog, *defs)` then
adds them in order. Whatever a definition uses (a tool function in an agent's tools, an agent
object in a step) is added before it unless it is already registered. Every mistake raises
:class:`CatalogError` naming the definition. References written as text must be `name@version`.
The definition objects (`ToolDef`, `AgentDef`, `StepDef`, `WorkflowDef`) are in
:mod:`orchestrator.catalog.definitions`, re-exported here.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from orchestrator.catalog.definitions import TOOL_ATTR, check_version, money, problems, reference
from orchestrator.catalog.definitions import AgentDef as AgentDef
from orchestrator.catalog.definitions import StepDef as StepDef
from orchestrator.catalog.definitions import ToolDef as ToolDef
from orchestrator.catalog.definitions import WorkflowDef as WorkflowDef
from orchestrator.catalog.definitions import tool_def as tool_def
from orchestrator.catalog.registry import (
    Catalog,
    CatalogError,
    DataClassification,
    RiskClass,
    ToolImpl,
    WorkflowDefinition,
    json_schema,
)
from orchestrator.catalog.registry import ToolContext as ToolContext  # re-exported for tool signatures
from orchestrator.catalog.registry import ToolFailure as ToolFailure
from orchestrator.contracts import AgentSpec, SideEffect, StepSpec, WorkflowSpec
from orchestrator.contracts import ValidatorSpec as ValidatorSpec

SIDE_EFFECTS: tuple[str, ...] = get_args(SideEffect)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what model APIs accept as a function name


# --- tools -------------------------------------------------------------------------------------------


def tool(
    name: str | None = None,
    version: str = "1",
    *,
    side_effect: SideEffect,
    cost_usd: str | Decimal | None = None,
    description: str | None = None,
) -> Callable[[ToolImpl], ToolImpl]:
    """Declare `async def fn(args: ArgsModel, ctx: ToolContext) -> dict` a tool. The argument
    model is the first parameter's annotation, the description the docstring (or `description`).
    Returns the function unchanged; its :class:`ToolDef` is `tool_def(fn)`."""

    def decorate(fn: ToolImpl) -> ToolImpl:
        setattr(fn, TOOL_ATTR, _make_tool(fn, name, version, side_effect, cost_usd, description))
        return fn

    return decorate


def _make_tool(
    fn: Any, name: str | None, version: str, side_effect: SideEffect, cost: Any, description: str | None
) -> ToolDef:
    label = f"@tool {getattr(fn, '__qualname__', fn)!r}"
    if not inspect.iscoroutinefunction(fn):
        raise CatalogError(f"{label}: a tool must be an async function (async def)")
    name = name or fn.__name__
    if not TOOL_NAME.match(name):
        raise CatalogError(f"{label}: name {name!r} must be letters, digits, _ or - (at most 64)")
    label = f"tool {name}@{version}"
    check_version(label, version)
    if side_effect not in SIDE_EFFECTS:
        raise CatalogError(f"{label}: side_effect {side_effect!r} must be one of {', '.join(SIDE_EFFECTS)}")
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise CatalogError(f"{label}: the function must take (args, ctx), not {len(params)} parameter(s)")
    args_model = _annotation(fn, params[0].name)
    if not (isinstance(args_model, type) and issubclass(args_model, BaseModel)):
        raise CatalogError(
            f"{label}: annotate the first parameter ({params[0].name}) with a pydantic model, "
            f"got {args_model!r}"
        )
    text = (description or inspect.getdoc(fn) or "").strip()
    if not text:
        raise CatalogError(f"{label}: give it a docstring or description= (the model reads it)")
    return ToolDef(name, str(version), text, side_effect, args_model, fn, money(label, "cost_usd", cost))


def _annotation(fn: Any, param: str) -> Any:
    try:
        return typing.get_type_hints(fn).get(param)
    except Exception:  # another annotation does not resolve (e.g. imported for type checking only)
        raw = fn.__annotations__.get(param)
        return eval(raw, fn.__globals__) if isinstance(raw, str) else raw


# --- agents ------------------------------------------------------------------------------------------


def agent(
    name: str,
    version: str = "1",
    *,
    instructions: str,
    output_model: type[BaseModel],
    tier: str | None = None,
    tiers: Sequence[str] | None = None,
    tools: Iterable[Any] = (),
    max_turns: int = 8,
    max_tokens: int = 1024,
    validator: ValidatorSpec | None = None,
    review_role: str = "approver",
    step_budget_usd: str | Decimal | None = None,
) -> AgentDef:
    """An agent: a tier or a ladder of tiers (`tiers`, cheapest first), the tools it may ask for
    (`@tool` functions, ToolDefs or "name@version"), its output model and limits."""
    label = f"agent {name}@{version}"
    check_version(label, version)
    ladder = list(tiers or [])
    if any(not isinstance(t, str) or not t.strip() for t in ladder):
        raise CatalogError(f"{label}: tiers must be non-empty tier names, got {ladder!r}")
    if tier is None and not ladder:
        raise CatalogError(f"{label}: give tier= or a ladder tiers=[...]")
    if tier is not None and ladder and tier != ladder[0]:
        raise CatalogError(f"{label}: tier {tier!r} must be the first rung of tiers {ladder!r}")
    if not (isinstance(output_model, type) and issubclass(output_model, BaseModel)):
        raise CatalogError(f"{label}: output_model must be a pydantic model class, got {output_model!r}")
    pairs = [reference(label, "tools", item, "tool") for item in tools]
    model_key = f"{output_model.__module__}.{output_model.__qualname__}"
    schema = json_schema(output_model, f"{label}: output model {model_key}")
    try:
        spec = AgentSpec(
            name=name,
            version=str(version),
            instructions=instructions,
            tier=tier or ladder[0],
            tiers=ladder,
            validator=validator,
            review_role=review_role,
            tools=[ref for ref, _ in pairs],
            max_turns=max_turns,
            max_tokens=max_tokens,
            step_budget_usd=money(label, "step_budget_usd", step_budget_usd),
            output_model=model_key,
            output_schema=schema,
        )
    except ValidationError as exc:
        raise CatalogError(f"{label}: {problems(exc)}") from None
    if spec.max_turns < 1 or spec.max_tokens < 1:
        raise CatalogError(f"{label}: max_turns and max_tokens must be at least 1")
    return AgentDef(spec, output_model, tuple(d for _, d in pairs if isinstance(d, ToolDef)))


# --- workflows and steps ----------------------------------------------------------------------------


def agent_step(name: str, agent: AgentDef | str, *, when: str | None = None) -> StepDef:
    ref, dep = reference(f"step {name}", "agent", agent, "agent")
    return _step(name, dep, kind="agent", agent=ref, when=when)


def tool_step(
    name: str, tool: Any, args: dict[str, Any] | None = None, *, when: str | None = None
) -> StepDef:
    """Run a tool with `args`; string values may be `{input.<key>}` or `{steps.<step>.<field>}`."""
    ref, dep = reference(f"step {name}", "tool", tool, "tool")
    return _step(name, dep, kind="tool", tool=ref, args=dict(args or {}), when=when)


def checkpoint_step(
    name: str, *, review: str = "output_review", assignee_role: str = "approver", when: str | None = None
) -> StepDef:
    """A person (`assignee_role`) reviews the previous step's output before the task goes on."""
    return _step(name, None, kind="checkpoint", review=review, assignee_role=assignee_role, when=when)


def planner_step(
    name: str,
    agent: AgentDef | str,
    planner_agents: Iterable[AgentDef | str],
    require_plan_review: bool = False,
    *,
    assignee_role: str = "approver",
    when: str | None = None,
) -> StepDef:
    """`agent` plans the task with the agents of `planner_agents`; optionally a person reviews it."""
    ref, dep = reference(f"step {name}", "agent", agent, "agent")
    pairs = [reference(f"step {name}", "planner_agents", item, "agent") for item in planner_agents]
    step = _step(
        name,
        None,
        kind="planner",
        agent=ref,
        planner_agents=[r for r, _ in pairs],
        require_plan_review=require_plan_review,
        assignee_role=assignee_role,
        when=when,
    )
    return StepDef(step.spec, tuple(d for d in [dep, *(d for _, d in pairs)] if d is not None))


def _step(name: str, dep: Any, **fields: Any) -> StepDef:
    try:
        spec = StepSpec(name=name, **fields)
    except ValidationError as exc:
        raise CatalogError(f"step {name}: {problems(exc)}") from None
    return StepDef(spec, (dep,) if isinstance(dep, AgentDef | ToolDef) else ())


def workflow(
    name: str,
    version: str = "1",
    *,
    description: str,
    steps: Sequence[StepDef | StepSpec | dict[str, Any]],
    examples: Iterable[str] = (),
    default_budget_usd: str | Decimal | None = None,
    data_classification: DataClassification = "internal",
    category: str = "general",
    risk_class: RiskClass = "low",
    max_task_turns: int = 24,
    input_schema: dict[str, Any] | None = None,
) -> WorkflowDef:
    """A workflow definition: its steps (see the step helpers), intake examples and defaults."""
    label = f"workflow {name}@{version}"
    check_version(label, version)
    specs: list[StepSpec] = []
    uses: list[AgentDef | ToolDef] = []
    for i, item in enumerate(steps):
        if isinstance(item, StepDef):
            specs.append(item.spec)
            uses += item.uses
        elif isinstance(item, StepSpec):
            specs.append(item)
        else:
            try:
                specs.append(StepSpec.model_validate(item))
            except ValidationError as exc:
                raise CatalogError(f"{label}: steps[{i}]: {problems(exc)}") from None
    definition = WorkflowDefinition(
        name=name,
        version=str(version),
        description=description,
        steps=specs,
        category=category,
        risk_class=risk_class,
        data_classification=data_classification,
        input_schema=dict(input_schema or {}),
        examples=list(examples),
        max_task_turns=max_task_turns,
        default_budget_usd=money(label, "default_budget_usd", default_budget_usd),
    )
    try:  # the same checks a pinned task will meet
        WorkflowSpec(**{**definition.__dict__, "agents": {}, "tools": {}})
    except ValidationError as exc:
        raise CatalogError(f"{label}: {problems(exc)}") from None
    return WorkflowDef(definition, tuple(uses))


# --- registering ------------------------------------------------------------------------------------


class CatalogModule:
    """Collects a package's definitions in order; `register` is the package's register(catalog)."""

    def __init__(self, *defs: Any) -> None:
        self.defs: list[Any] = list(defs)

    def add(self, *defs: Any) -> None:
        self.defs += defs

    def tool(
        self, name: str | None = None, version: str = "1", **options: Any
    ) -> Callable[[ToolImpl], ToolImpl]:
        def decorate(fn: ToolImpl) -> ToolImpl:
            tool(name, version, **options)(fn)
            self.defs.append(tool_def(fn))
            return fn

        return decorate

    def agent(self, name: str, version: str = "1", **options: Any) -> AgentDef:
        self.defs.append(made := agent(name, version, **options))
        return made

    def workflow(self, name: str, version: str = "1", **options: Any) -> WorkflowDef:
        self.defs.append(made := workflow(name, version, **options))
        return made

    def register(self, catalog: Catalog) -> None:
        register(catalog, *self.defs)


def register(catalog: Catalog, *defs: Any) -> None:
    """Add definitions in order: ToolDefs or `@tool` functions, AgentDefs, WorkflowDefs,
    WorkflowDefinitions and CatalogModules. What one uses is added first if it is not there yet."""
    seen: set[int] = set()
    for item in defs:
        _add(catalog, item, seen)


def _add(catalog: Catalog, item: Any, seen: set[int]) -> None:
    if id(item) in seen:
        return
    seen.add(id(item))
    if isinstance(item, CatalogModule):
        for d in item.defs:
            _add(catalog, d, seen)
    elif isinstance(item, WorkflowDefinition):
        catalog.add_workflow(item)
    elif isinstance(item, WorkflowDef | AgentDef):
        for dep in item.uses:
            _add(catalog, dep, seen)
        there = catalog.agents.get(item.ref) if isinstance(item, AgentDef) else None
        if not (isinstance(item, AgentDef) and there and there.spec == item.spec):
            item.register(catalog)
    elif isinstance(item, ToolDef) or hasattr(item, TOOL_ATTR):
        found = tool_def(item)
        there_tool = catalog.tools.get(found.ref)
        if there_tool is None or there_tool.impl is not found.impl:
            found.register(catalog)
    else:
        raise CatalogError(f"cannot register {item!r}: not a tool, agent, workflow or CatalogModule")
