"""The definition objects of the typed developer API (`orchestrator.catalog.api`): a tool, an
agent, a step and a workflow as declared, each knowing what it uses and how to register itself,
and the checks every declaration shares (versions, USD amounts, references).

Builds on the registry (`orchestrator.catalog.registry`); `orchestrator.catalog.api` makes these
objects and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.catalog.registry import (
    Catalog,
    CatalogError,
    RegisteredAgent,
    RegisteredTool,
    ToolImpl,
    WorkflowDefinition,
)
from orchestrator.contracts import AgentSpec, SideEffect, StepSpec

TOOL_ATTR = "__frontdesk_tool__"  # where `@tool` keeps a function's ToolDef


# --- definitions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolDef:
    name: str
    version: str
    description: str
    side_effect: SideEffect
    args_model: type[BaseModel]
    impl: ToolImpl
    cost_usd: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def register(self, catalog: Catalog) -> RegisteredTool:
        options = {
            k: getattr(self, k) for k in ("description", "side_effect", "args_model", "impl", "cost_usd")
        }
        return catalog.add_tool(self.name, self.version, **options)


@dataclass(frozen=True)
class AgentDef:
    spec: AgentSpec
    output_model: type[BaseModel]
    uses: tuple[ToolDef, ...] = ()

    @property
    def ref(self) -> str:
        return self.spec.ref

    def register(self, catalog: Catalog) -> RegisteredAgent:
        fields = self.spec.model_dump(exclude={"output_model", "output_schema"})
        return catalog.add_agent(output_model=self.output_model, **fields)


@dataclass(frozen=True)
class StepDef:
    spec: StepSpec
    uses: tuple[AgentDef | ToolDef, ...] = ()


@dataclass(frozen=True)
class WorkflowDef:
    definition: WorkflowDefinition
    uses: tuple[AgentDef | ToolDef, ...] = ()

    @property
    def ref(self) -> str:
        return self.definition.ref

    def register(self, catalog: Catalog) -> WorkflowDefinition:
        return catalog.add_workflow(self.definition)


def tool_def(obj: Any) -> ToolDef:
    """The :class:`ToolDef` of a `@tool` function (or the ToolDef itself)."""
    if isinstance(obj, ToolDef):
        return obj
    found = getattr(obj, TOOL_ATTR, None)
    if isinstance(found, ToolDef):
        return found
    raise CatalogError(f"{obj!r} is not a tool: decorate it with @tool(...) or use a ToolDef")


# --- helpers -----------------------------------------------------------------------------------------


def reference(label: str, field: str, item: Any, kind: str) -> tuple[str, AgentDef | ToolDef | None]:
    if isinstance(item, str):
        name, at, version = item.partition("@")
        if not (name and at and version):
            raise CatalogError(f"{label}: {field} {item!r} must be {kind} name@version")
        return item, None
    if kind == "agent" and isinstance(item, AgentDef):
        return item.ref, item
    if kind == "tool" and (isinstance(item, ToolDef) or hasattr(item, TOOL_ATTR)):
        found = tool_def(item)
        return found.ref, found
    raise CatalogError(f"{label}: {field} {item!r} is not a {kind} (nor a {kind} name@version)")


def check_version(label: str, version: Any) -> None:
    if not isinstance(version, str) or not version or "@" in version or version != version.strip():
        raise CatalogError(f"{label}: version must be a non-empty string without '@', got {version!r}")


def money(label: str, field: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise CatalogError(f"{label}: {field} must be a non-negative amount in USD, got {value!r}")
    return str(value)


def problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
