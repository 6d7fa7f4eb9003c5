"""Workflow definitions written in YAML, referring to registered agents and tools by `name@version`.

    name: refund_express
    version: "2"                      # quote versions: 1.10 would be read as the number 1.1
    description: Small refunds, no e-mail.
    category: customer-service
    risk_class: high                  # low | medium | high
    data_classification: internal     # public | internal | confidential
    examples: ["Refund ORD-1001, it arrived broken.", "Money back for ORD-1002 please."]
    default_budget_usd: "0.50"
    max_task_turns: 12
    steps:
      - {name: handle, kind: agent, agent: refund_agent@1}
      - {name: review, kind: checkpoint, assignee_role: approver}

A file holds one definition, a list of them, or several YAML documents (`---`). A folder is read
recursively, files in name order. Fields are those of `WorkflowDefinition`; steps those of
`StepSpec`. Every problem of a file is reported at once, naming the file and the field.
Builds on the registry and checks each definition with `orchestrator.catalog.validate`;
`orchestrator.catalog.loader` calls it for the YAML entries of `catalog_packages`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.catalog.registry import Catalog, CatalogError, WorkflowDefinition, step_refs
from orchestrator.catalog.validate import check_workflow
from orchestrator.contracts import StepSpec

__all__ = ["YamlDefinitionError", "load_yaml_workflows", "yaml_files"]


class YamlDefinitionError(CatalogError):
    """YAML workflow definitions that cannot be loaded; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Step(StepSpec):
    model_config = ConfigDict(extra="forbid")


class _Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[^@\s]+$")
    version: str = Field(pattern=r"^[^@\s]+$")
    description: str = Field(min_length=1)
    steps: list[_Step] = Field(min_length=1)
    category: str = "general"
    risk_class: Literal["low", "medium", "high"] = "low"
    data_classification: Literal["public", "internal", "confidential"] = "internal"
    input_schema: dict[str, Any] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)
    max_task_turns: int = Field(24, ge=1)
    default_budget_usd: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError(
                f'quote the version: YAML reads it as the number {value!r} (write e.g. version: "1.10")'
            )
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("default_budget_usd", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else None
        try:
            amount = Decimal(text) if text is not None else Decimal("NaN")
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"must be a non-negative amount in USD, got {value!r}")
        return text


def yaml_files(path_or_dir: str | Path) -> list[Path]:
    """The files one `catalog_packages` entry names (a file, or every .yaml/.yml under a folder)."""
    path = Path(path_or_dir)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
        if not found:
            raise YamlDefinitionError([f"{path}: the folder holds no .yaml or .yml files"])
        return found
    if not path.is_file():
        raise YamlDefinitionError([f"{path}: no such file or folder"])
    return [path]


def load_yaml_workflows(catalog: Catalog, path_or_dir: str | Path) -> list[WorkflowDefinition]:
    """Read, check and register the workflow definitions of a YAML file or folder. Raises
    :class:`YamlDefinitionError` (nothing from a bad file is registered) listing every problem."""
    added: list[WorkflowDefinition] = []
    for path in yaml_files(path_or_dir):
        definitions = _read(catalog, path)
        previous, catalog.origin = catalog.origin, str(path)
        try:
            for definition in definitions:
                try:
                    added.append(catalog.add_workflow(definition))
                except CatalogError as exc:
                    raise YamlDefinitionError([f"{path}: {exc}"]) from None
        finally:
            catalog.origin = previous
    return added


def _read(catalog: Catalog, path: Path) -> list[WorkflowDefinition]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlDefinitionError([f"{path}: cannot read: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise YamlDefinitionError([f"{path}: not valid YAML: {exc}".replace("\n", " ")]) from None
    items: list[Any] = []
    for document in documents:
        items += document if isinstance(document, list) else [document]
    if not items:
        raise YamlDefinitionError([f"{path}: holds no workflow definition"])
    problems: list[str] = []
    definitions: list[WorkflowDefinition] = []
    for index, item in enumerate(items):
        where = f"{path}" + (f" (definition {index + 1})" if len(items) > 1 else "")
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a workflow definition (a mapping), got {type(item).__name__}")
            continue
        try:
            parsed = _Workflow.model_validate(item)
        except ValidationError as exc:
            label = f"{where}: workflow {item.get('name', '?')}@{item.get('version', '?')}"
            problems += [f"{label}: {_field(e['loc'], item)}: {_msg(e['msg'])}" for e in exc.errors()]
            continue
        definition = WorkflowDefinition(
            **parsed.model_dump(exclude={"steps"}),
            steps=[StepSpec.model_validate(s.model_dump()) for s in parsed.steps],
        )
        found = _check(catalog, definition)
        problems += [f"{where}: workflow {definition.ref}: {p}" for p in found]
        definitions.append(definition)
    if problems:
        raise YamlDefinitionError(problems)
    return definitions


def _msg(text: str) -> str:
    return text.removeprefix("Value error, ")


def _field(loc: tuple[Any, ...], item: dict[str, Any]) -> str:
    """`steps[1] (review).review` from pydantic's ("steps", 1, "review")."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    steps = item.get("steps")
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int) and isinstance(steps, list):
        step = steps[loc[1]] if loc[1] < len(steps) else None
        if isinstance(step, dict) and step.get("name"):
            prefix = f"steps[{loc[1]}]"
            text = f"{prefix} ({step['name']}){text[len(prefix) :]}"
    return text or "definition"


def _check(catalog: Catalog, definition: WorkflowDefinition) -> list[str]:
    problems = []
    for i, step in enumerate(definition.steps):
        agents, tools = step_refs(step)
        for ref in [*agents, *tools]:
            if "@" not in ref:
                problems.append(f"steps[{i}] ({step.name}): {ref!r} must be name@version")
    issues = check_workflow(catalog, definition)
    return problems + [i.message for i in issues if i.severity == "error"]
