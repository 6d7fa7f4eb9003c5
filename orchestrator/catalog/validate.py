"""Catalog validation: what `frontdesk catalog validate` reports before a deploy.

Errors (the catalog would fail at run time): unknown references (a step's agent or tool, an
agent's tools, a planner's agents, a judge), a step missing what its kind needs, duplicate step
names, a `when` or argument template naming no earlier step, an empty tier ladder, output models
that do not serialize or round-trip through JSON, a validator asking for a field the output lacks.
Warnings (errors with `strict`): tools no policy rule mentions, agents no rule lets call a tool
they may ask for, workflows with fewer than two intake examples, references without a version.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from orchestrator.catalog.registry import Catalog, Kind, WorkflowDefinition, step_refs
from orchestrator.policy.rules import PolicyRule, alternatives, is_bare_star, name_match

if TYPE_CHECKING:
    from orchestrator.policy.engine import PolicyEngine

MIN_EXAMPLES = 2
_TEMPLATE = re.compile(r"\{([a-z_][\w.]*)\}")


@dataclass(frozen=True)
class CatalogIssue:
    severity: Literal["error", "warning"]
    ref: str  # the workflow, agent or tool at fault (name@version)
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.ref}: {self.message}"


def validate_catalog(
    catalog: Catalog, policy: PolicyEngine | None = None, *, strict: bool = False
) -> list[CatalogIssue]:
    """Every problem of the catalog, errors first; with `strict` warnings count as errors."""
    issues = [*_agent_issues(catalog)]
    for ref in catalog.workflow_refs():
        issues += check_workflow(catalog, catalog.workflow(ref))
        examples = len(catalog.workflow(ref).examples)
        if examples < MIN_EXAMPLES:
            issues.append(
                CatalogIssue(
                    "warning",
                    ref,
                    f"has {examples} intake example(s); give at least {MIN_EXAMPLES} so intake can "
                    "pick it from a request",
                )
            )
    if policy is not None:
        issues += _policy_issues(catalog, policy.view().rules)
    if strict:
        issues = [CatalogIssue("error", i.ref, i.message) for i in issues]
    return sorted(issues, key=lambda i: i.severity != "error")  # stable: errors first


# --- workflows --------------------------------------------------------------------------------------


def check_workflow(catalog: Catalog, wf: WorkflowDefinition) -> list[CatalogIssue]:
    """The structural problems of one workflow definition (also run on YAML definitions)."""
    ref = wf.ref
    out: list[CatalogIssue] = []

    def err(message: str) -> None:
        out.append(CatalogIssue("error", ref, message))

    if not wf.steps:
        err("has no steps")
    first_index: dict[str, int] = {}
    for i, step in enumerate(wf.steps):
        at = f"steps[{i}] ({step.name or 'unnamed'})"
        if not step.name.strip():
            err(f"steps[{i}].name: a step needs a name")
        elif step.name in first_index:
            err(f"steps[{i}].name: duplicate step name {step.name!r} (also steps[{first_index[step.name]}])")
        earlier = list(first_index)
        if step.kind in ("agent", "planner") and not step.agent:
            err(f"{at}.agent: {'an' if step.kind == 'agent' else 'a'} {step.kind} step names no agent")
        if step.kind == "tool" and not step.tool:
            err(f"{at}.tool: a tool step names no tool (name@version)")
        if step.kind == "planner" and step.agent in catalog.agents:
            planner = catalog.agent(step.agent).spec
            if "steps" not in planner.output_schema.get("properties", {}):
                err(
                    f"{at}.agent: planner {planner.ref}'s output model has no 'steps' (a planner answers a Plan)"
                )
        if step.kind == "planner" and not step.planner_agents:
            err(f"{at}.planner_agents: a planner step needs the agents it may plan with")
        if step.kind == "checkpoint" and i == 0:
            err(f"{at}: a checkpoint reviews the previous step's output, but it is the first step")
        if step.kind == "checkpoint" and step.review == "plan_review":
            if not any(s.kind == "planner" for s in wf.steps[:i]):
                out.append(
                    CatalogIssue("warning", ref, f"{at}.review: plan_review with no planner step before")
                )
        agents, tools = step_refs(step)
        fields = ["agent"] * (step.kind in ("agent", "planner") and bool(step.agent))
        fields += [f"planner_agents[{j}]" for j in range(len(step.planner_agents))] * (step.kind == "planner")
        for field_name, agent_ref in zip(fields, agents, strict=True):
            out += _reference(catalog, ref, f"{at}.{field_name}", "agent", agent_ref)
        for tool_ref in tools:
            out += _reference(catalog, ref, f"{at}.tool", "tool", tool_ref)
        if step.when is not None and not step.when.strip().startswith("input."):
            named = _step_of(step.when)
            if named is None or named not in earlier:
                known = ", ".join(earlier) or "none"
                err(
                    f"{at}.when: {step.when!r} names no earlier step (want steps.<step>.<field> or input.<key>; earlier: {known})"
                )
        for path, value in _strings(step.args, "args"):
            for template in _TEMPLATE.findall(value):
                named = _step_of(template)
                if template.startswith("steps.") and named not in earlier:
                    err(f"{at}.{path}: {{{template}}} names no earlier step")
                elif not template.startswith(("steps.", "input")):
                    err(f"{at}.{path}: {{{template}}} must start with input. or steps.")
        first_index.setdefault(step.name, i)
    return out


def _step_of(path: str) -> str | None:
    head, _, rest = path.strip().partition(".")
    name = rest.partition(".")[0]
    return name if head == "steps" and name else None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _reference(catalog: Catalog, ref: str, where: str, kind: Kind, target: str) -> list[CatalogIssue]:
    table: dict[str, Any] = catalog.agents if kind == "agent" else catalog.tools
    if target not in table:
        name = target.split("@", 1)[0]
        versions = catalog.versions(name, kind)
        known = sorted({r.split("@", 1)[0] for r in table if "@" in r})
        close = difflib.get_close_matches(name, known, n=3)
        hint = (
            f"; {name} has version(s) {', '.join(versions)}"
            if versions
            else (f"; did you mean {' or '.join(close)}?" if close else "")
        )
        return [CatalogIssue("error", ref, f"{where}: unknown {kind} {target!r}{hint}")]
    if "@" not in target:
        latest = catalog.resolve(kind, target)
        message = f"{where}: {target!r} has no version and means whatever is newest (now {latest}); write name@version"
        return [CatalogIssue("warning", ref, message)]
    return []


# --- agents and output models ------------------------------------------------------------------------


def _agent_issues(catalog: Catalog) -> Iterator[CatalogIssue]:
    for ref in catalog.refs("agent"):
        registered = catalog.agent(ref)
        spec = registered.spec
        if not [t for t in spec.ladder if t.strip()]:
            yield CatalogIssue("error", ref, "has an empty tier ladder: give a tier or tiers=[...]")
        for i, tier in enumerate(spec.tiers):
            if not tier.strip():
                yield CatalogIssue("error", ref, f"tiers[{i}] is blank")
        for i, tool_ref in enumerate(spec.tools):
            yield from _reference(catalog, ref, f"tools[{i}]", "tool", tool_ref)
        yield from _validator_issues(catalog, ref)
        yield from (CatalogIssue("error", ref, m) for m in model_problems(registered.output_model))


def _validator_issues(catalog: Catalog, ref: str) -> Iterator[CatalogIssue]:
    spec = catalog.agent(ref).spec
    v = spec.validator
    if v is None or v.kind == "output_model":
        return
    if v.kind == "confidence":
        prop = spec.output_schema.get("properties", {}).get(v.field)
        if prop is None:
            yield CatalogIssue(
                "error", ref, f"validator.field: output model {spec.output_model} has no field {v.field!r}"
            )
        elif prop.get("type") not in ("number", "integer"):
            yield CatalogIssue("warning", ref, f"validator.field: {v.field!r} is not a number")
        return
    if not v.judge_agent:
        yield CatalogIssue("error", ref, "validator.judge_agent: a judge validator needs a judge agent")
        return
    found = _reference(catalog, ref, "validator.judge_agent", "agent", v.judge_agent)
    yield from found
    if any(i.severity == "error" for i in found):
        return
    judge = catalog.agent(v.judge_agent).spec
    props = judge.output_schema.get("properties", {})
    for name, kind in (("approve", "boolean"), ("reason", "string")):
        if props.get(name, {}).get("type") != kind:
            yield CatalogIssue(
                "error",
                ref,
                f"validator.judge_agent: judge {judge.ref}'s output model has no {kind} field {name!r} "
                "(a judge answers approve: bool and reason: str)",
            )


def model_problems(model: type[BaseModel]) -> list[str]:
    """Why an output model cannot be given to a model and read back ([] when it can)."""
    key = f"{model.__module__}.{model.__qualname__}"
    try:
        schema = model.model_json_schema()
        model.model_json_schema(mode="serialization")
        json.dumps(schema)
    except Exception as exc:
        return [f"output model {key} does not serialize to a JSON schema: {type(exc).__name__}: {exc}"]
    sample = _sample(schema, schema.get("$defs", {}), 0)
    try:
        instance = model.model_validate(sample)
    except ValidationError:
        return []  # the generated sample does not fit the model's constraints: nothing to conclude
    try:
        again = model.model_validate_json(instance.model_dump_json())
        same = again.model_dump(mode="json") == instance.model_dump(mode="json")
    except ValidationError as exc:
        return [f"output model {key} does not round-trip through JSON: {_errors(exc)}"]
    except Exception as exc:
        return [f"output model {key} does not round-trip through JSON: {type(exc).__name__}: {exc}"]
    if not same:
        return [f"output model {key} changes on a JSON round trip (sample {sample!r})"]
    return []


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _sample(node: Any, defs: dict[str, Any], depth: int) -> Any:
    """A value that fits a JSON schema in the simple cases (bounds, enums, formats)."""
    if not isinstance(node, dict) or depth > 10:
        return None
    if "$ref" in node:
        return _sample(defs.get(node["$ref"].rsplit("/", 1)[-1]), defs, depth + 1)
    for key in ("const", "default"):
        if key in node:
            return node[key]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in node.get(key, []) if o.get("type") != "null"]
        if options:
            return _sample(options[0], defs, depth + 1)
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        return {k: _sample(v, defs, depth + 1) for k, v in props.items()}
    if kind == "array":
        count = max(node.get("minItems", 1), 1)
        return [_sample(node.get("items", {}), defs, depth + 1) for _ in range(count)]
    if kind == "string":
        if node.get("format") in _FORMATS:
            return _FORMATS[node["format"]]
        return "x" * max(node.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in node else 0))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        value = low if high is None or low <= high else high
        return int(value) if kind == "integer" else value
    return True if kind == "boolean" else None


# --- policies ------------------------------------------------------------------------------------------


def mentions(rule: PolicyRule, tool: str) -> bool:
    """The rule names the tool (exactly, by `a|b` or by a `prefix*`), not only by a bare `*`."""
    return any(p and not is_bare_star(p) and name_match(tool, p) for p in alternatives(rule.tool))


def may_call(rules: tuple[PolicyRule, ...] | list[PolicyRule], agent: str, tool: str) -> bool:
    """Some rule (not a guard) could allow or approve `agent` calling `tool`."""
    return any(
        not r.guard and r.effect in ("allow", "approve") and name_match(agent, r.agent) and mentions(r, tool)
        for r in rules
    )


def policy_mentions(rules: tuple[PolicyRule, ...] | list[PolicyRule], tool: str) -> list[str]:
    """Ids of the rules that name `tool` (the name, without a version)."""
    return [r.rule_id for r in rules if mentions(r, tool.split("@", 1)[0])]


def _policy_issues(catalog: Catalog, rules: tuple[PolicyRule, ...]) -> Iterator[CatalogIssue]:
    for name in sorted({catalog.tool(r).spec.name for r in catalog.refs("tool")}):
        if not policy_mentions(rules, name):
            ref = catalog.resolve("tool", name)
            yield CatalogIssue(
                "warning",
                ref,
                f"no policy rule mentions tool {name!r}: every call to it is denied "
                "(add a rule to tool_policy.csv)",
            )
    for ref in catalog.refs("agent"):
        spec = catalog.agent(ref).spec
        for i, tool_ref in enumerate(spec.tools):
            tool = tool_ref.split("@", 1)[0]
            if policy_mentions(rules, tool) and not may_call(rules, spec.name, tool):
                yield CatalogIssue(
                    "warning",
                    ref,
                    f"tools[{i}]: no policy rule lets agent {spec.name!r} call {tool!r}; every call is denied",
                )
    for ref in catalog.workflow_refs():
        wf = catalog.workflow(ref)
        for i, step in enumerate(wf.steps):
            for tool_ref in step_refs(step)[1]:
                tool, caller = tool_ref.split("@", 1)[0], f"workflow:{wf.name}"
                if policy_mentions(rules, tool) and not may_call(rules, caller, tool):
                    yield CatalogIssue(
                        "warning",
                        ref,
                        f"steps[{i}] ({step.name}).tool: no policy rule lets {caller!r} call {tool!r}; "
                        "the step will be denied",
                    )
