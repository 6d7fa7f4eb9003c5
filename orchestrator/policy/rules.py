"""The pieces of the tool policy: facts, rules, condition functions and approval settings.

Pure parsing and data, shared by the policy engine (`orchestrator.policy.engine`) and the linter
(`orchestrator.policy.lint`). Nothing here reads files or keeps state.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import yaml
from casbin.model import FunctionMap
from casbin.util import escape_assertion, get_eval_value, key_match, replace_eval
from pydantic import BaseModel, ConfigDict, field_validator

from orchestrator.contracts import ApprovalSpec, EscalationStep

ALL_TENANTS = "all-tenants"
EFFECTS = ("allow", "approve", "deny")
REQUEST_FIELDS = ("tenant", "agent", "tool", "args", "facts")
TOOL_FIELDS = ("tenant", "agent", "tool", "cond", "effect", "rule_id")
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class PolicyError(ValueError):
    """A policy that cannot be loaded; `problems` names each file, line or rule at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- facts ------------------------------------------------------------------------------------

_STRICTEST = {
    "side_effect": ("irreversible", ("read", "write", "irreversible")),
    "data_classification": ("confidential", ("public", "internal", "confidential")),
    "risk_class": ("high", ("low", "medium", "high")),
}
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


class ToolFacts(BaseModel):
    """What conditions may read as `r.facts.<name>`. A fact that is missing or not one of the
    known values takes its strictest value, so missing facts never loosen the policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    side_effect: Literal["read", "write", "irreversible"] = "irreversible"
    data_classification: Literal["public", "internal", "confidential"] = "confidential"
    risk_class: Literal["low", "medium", "high"] = "high"
    category: str = ""
    tenant_domain: str = ""  # the tenant's own e-mail domain; "" = unknown (every address is outside)

    @field_validator("side_effect", "data_classification", "risk_class", mode="before")
    @classmethod
    def _strictest_unless_known(cls, value: Any, info: Any) -> Any:
        strictest, known = _STRICTEST[info.field_name]
        return value if value in known else strictest

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: Any) -> str:
        return value.strip()[:100] if isinstance(value, str) else ""

    @field_validator("tenant_domain", mode="before")
    @classmethod
    def _domain(cls, value: Any) -> str:
        domain = value.strip().lower() if isinstance(value, str) else ""
        return domain if _DOMAIN.match(domain) else ""


# --- condition functions --------------------------------------------------------------------


def money(value: Any) -> Decimal:
    """An amount as a Decimal; refuses bools, NaN, infinities and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise ValueError(f"{value!r} is not an amount")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    return amount


_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9.-]{1,253})$")


def domain_of(address: Any) -> str:
    """The lower-cased domain of a plain e-mail address; anything else is refused."""
    match = _EMAIL.match(address) if isinstance(address, str) else None
    domain = match.group(1).lower() if match else ""
    if not _DOMAIN.match(domain):
        raise ValueError(f"{address!r} is not an e-mail address")
    return domain


def alternatives(pattern: str) -> list[str]:
    return [part.strip() for part in pattern.split("|")]


def is_bare_star(part: str) -> bool:
    return bool(part) and set(part) == {"*"}


def name_match(name: Any, pattern: Any) -> bool:
    """`name` matches one of the `|` alternatives of `pattern` (each exact or keyMatch `prefix*`)."""
    if not isinstance(name, str) or not isinstance(pattern, str) or not name:
        return False
    return any(part and key_match(name, part) for part in alternatives(pattern))


CUSTOM_FUNCTIONS = {"money": money, "domainOf": domain_of, "nameMatch": name_match}


def condition_functions() -> dict[str, Any]:
    functions = FunctionMap.load_function_map()
    for name, func in CUSTOM_FUNCTIONS.items():
        functions.add_function(name, func)
    return dict(functions.get_functions())


# --- rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRule:
    rule_id: str
    tenant: str
    agent: str
    tool: str
    condition: str
    effect: str
    line: int = 0

    @property
    def guard(self) -> bool:
        """An approve rule for any agent or any tool: it can raise an allow, never grant."""
        wild = any(is_bare_star(p) for p in (*alternatives(self.agent), *alternatives(self.tool)))
        return self.effect == "approve" and wild

    @property
    def text(self) -> str:
        return f"{self.rule_id}: {self.tenant}, {self.agent}, {self.tool}, {self.condition}, {self.effect}"

    @property
    def params(self) -> dict[str, str]:
        values = (self.tenant, self.agent, self.tool, self.condition, self.effect, self.rule_id)
        return {f"p_{name}": value for name, value in zip(TOOL_FIELDS, values, strict=True)}


_SPLIT = re.compile(r"[,()\[\]]")


def split_line(line: str) -> list[str] | None:
    """A policy line's comma-separated fields (commas inside () or [] do not split), as casbin
    reads them; None for blank lines and comments."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    tokens, depth, start = [], 0, 0
    for match in _SPLIT.finditer(line):
        char = match.group()
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced brackets")
        elif depth == 0:
            tokens.append(line[start : match.start()].strip())
            start = match.end()
    if depth:
        raise ValueError("unbalanced brackets")
    tokens.append(line[start:].strip())
    return tokens


def policy_lines(text: str) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, fields or None if the line does not split, error) for each policy line."""
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            tokens = split_line(line)
        except ValueError as exc:
            yield number, None, str(exc)
            continue
        if tokens is not None:
            yield number, tokens, ""


def read_tool_rules(text: str) -> list[PolicyRule]:
    rules = []
    for number, tokens, error in policy_lines(text):
        if tokens is None or tokens[0] != "p" or len(tokens) != len(TOOL_FIELDS) + 1:
            raise PolicyError([f"tool_policy.csv:{number}: not a rule ({error or 'wrong fields'})"])
        tenant, agent, tool, cond, effect, rule_id = tokens[1:]
        rules.append(PolicyRule(rule_id, tenant, agent, tool, cond, effect, number))
    return rules


def condition_expression(matcher: str, condition: str) -> str:
    """The tool model's matcher with `eval(p.cond)` replaced by `condition`, rewritten the way
    casbin evaluates it (&& -> and, || -> or, ! -> not, r.x -> r_x)."""
    if not get_eval_value(matcher):
        raise ValueError("the matcher has no eval(p.cond)")
    expr = replace_eval(matcher, [escape_assertion(condition)])
    expr = expr.replace("&&", " and ").replace("||", " or ")
    return re.sub(r"!(?!=)", " not ", expr).strip()


def compile_condition(matcher: str, rule: PolicyRule) -> ast.expr:
    return ast.parse(condition_expression(matcher, rule.condition), mode="eval").body


def condition_tree(condition: str) -> ast.expr:
    """The condition alone, parsed (SyntaxError if it does not parse)."""
    return ast.parse(condition_expression("eval(p_cond)", condition), mode="eval").body


# --- approvals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    after_seconds: int
    add_roles: tuple[str, ...] = ()
    action: Literal["escalate", "auto_reject"] = "escalate"


@dataclass(frozen=True)
class ApprovalRule:
    rule_id: str  # the approvals.yaml entry these settings come from ("default" or a rule id)
    assignee_role: str = "approver"
    approvers_required: int = 1
    named_approvers: tuple[str, ...] = ()
    sla: tuple[Escalation, ...] = ()

    def describe(self) -> str:
        who = f"{self.approvers_required} distinct approver(s) with role {self.assignee_role}"
        if self.named_approvers:
            who += f" or named: {', '.join(self.named_approvers)}"
        steps = [
            f"after {_duration_text(e.after_seconds)} "
            + ("auto-reject" if e.action == "auto_reject" else f"add {', '.join(e.add_roles)}")
            for e in self.sla
        ]
        return "; ".join([who, *steps])

    def spec(self) -> ApprovalSpec:
        """The settings as the workflow and the API carry them (a pydantic model)."""
        return ApprovalSpec(
            rule_id=self.rule_id,
            assignee_role=self.assignee_role,
            approvers_required=self.approvers_required,
            named_approvers=list(self.named_approvers),
            sla=[
                EscalationStep(after_seconds=e.after_seconds, add_roles=list(e.add_roles), action=e.action)
                for e in self.sla
            ],
        )


APPROVAL_FIELDS = {"assignee_role", "approvers_required", "named_approvers", "sla"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and (unit != "d" or seconds >= 2 * size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(value: Any) -> int:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (seconds, or like 90s, 30m, 4h, 2d)")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


def _roles(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) and ROLE_NAME.match(r) for r in value):
        raise ValueError(f"{what} must be a list of role names")
    return tuple(value)


def _escalations(value: Any) -> tuple[Escalation, ...]:
    if not isinstance(value, list):
        raise ValueError("sla must be a list of steps")
    steps: list[Escalation] = []
    for n, raw in enumerate(value, start=1):
        if not isinstance(raw, dict) or set(raw) - {"after", "add_roles", "action"} or "after" not in raw:
            raise ValueError(f"sla step {n} must be {{after: <duration>, add_roles: [...] | action: ...}}")
        action = raw.get("action", "escalate")
        if action not in ("escalate", "auto_reject"):
            raise ValueError(f"sla step {n}: action must be escalate or auto_reject, not {action!r}")
        roles = _roles(raw.get("add_roles", []), f"sla step {n}: add_roles")
        if action == "escalate" and not roles:
            raise ValueError(f"sla step {n}: an escalation must add at least one role")
        if action == "auto_reject" and roles:
            raise ValueError(f"sla step {n}: auto_reject takes no add_roles")
        step = Escalation(parse_duration(raw["after"]), roles, action)
        if steps and step.after_seconds <= steps[-1].after_seconds:
            raise ValueError(f"sla step {n}: steps must come in increasing time")
        if steps and steps[-1].action == "auto_reject":
            raise ValueError(f"sla step {n}: nothing can follow auto_reject")
        steps.append(step)
    return tuple(steps)


def _approval(key: str, raw: Mapping[str, Any]) -> ApprovalRule:
    role = raw.get("assignee_role", "approver")
    if not isinstance(role, str) or not ROLE_NAME.match(role):
        raise ValueError(f"assignee_role must be a role name, not {role!r}")
    required = raw.get("approvers_required", 1)
    if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= 10:
        raise ValueError(f"approvers_required must be a whole number from 1 to 10, not {required!r}")
    named = raw.get("named_approvers", [])
    if not isinstance(named, list) or not all(isinstance(n, str) and n.strip() for n in named):
        raise ValueError("named_approvers must be a list of people (e-mail addresses)")
    if len(set(named)) != len(named):
        raise ValueError("named_approvers lists someone twice")
    return ApprovalRule(key, role, required, tuple(named), _escalations(raw.get("sla", [])))


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # base chosen at run time
    """A safe loader (libyaml's when installed) that refuses a key given twice (YAML would
    silently keep the last one)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.MarkedYAMLError("", None, f"{key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_approvals(text: str, rules: Mapping[str, PolicyRule] | None = None) -> dict[str, ApprovalRule]:
    """approvals.yaml as settings per key (`default` and rule ids); a listed rule inherits each
    field it does not set from `default`. Raises PolicyError naming every entry at fault."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader
    except yaml.YAMLError as exc:
        raise PolicyError([f"approvals.yaml is not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PolicyError(["approvals.yaml must map rule ids to approval settings"])
    problems: list[str] = []
    if "default" not in data:
        problems.append("approvals.yaml needs a `default` entry")
    default: dict[str, Any] = data["default"] if isinstance(data.get("default"), dict) else {}
    result: dict[str, ApprovalRule] = {}
    for key, raw in data.items():
        where = f"approvals.yaml: rule {key}"
        raw = {} if raw is None else raw
        if not isinstance(key, str) or (key != "default" and not RULE_ID.match(key)):
            problems.append(f"approvals.yaml: {key!r} is not a rule id")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping of settings")
            continue
        if unknown := sorted(set(raw) - APPROVAL_FIELDS):
            problems.append(f"{where}: unknown setting(s) {', '.join(map(str, unknown))}")
            continue
        if rules is not None and key != "default" and key not in rules:
            problems.append(f"{where}: no rule with this id in tool_policy.csv")
            continue
        try:
            result[key] = _approval(key, raw if key == "default" else {**default, **raw})
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise PolicyError(problems)
    return result
