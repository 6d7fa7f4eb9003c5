"""`frontdesk policy check`: validate and lint the policy files.

Errors make the policy engine refuse a version (it keeps the last good one), warnings do not.
Refused in the tool policy: lines that are not rules, unknown effects, missing or duplicate rule
ids, conditions that do not parse or read unknown names, over-matching patterns (a bare `*`
agent or tool on an `allow` rule whose condition is always true; `*` anywhere but at the end of
a pattern, where keyMatch would silently match every name) and rules that can never be reached
(an earlier rule covers the same tenant, agent and tool and always matches first).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from casbin.model import Model
from casbin.util import SimpleEval

from orchestrator.policy.files import FILES
from orchestrator.policy.rules import (
    ALL_TENANTS,
    EFFECTS,
    REQUEST_FIELDS,
    RULE_ID,
    TOOL_FIELDS,
    PolicyError,
    PolicyRule,
    ToolFacts,
    alternatives,
    compile_condition,
    condition_functions,
    condition_tree,
    is_bare_star,
    parse_approvals,
    policy_lines,
)

KNOWN_ROLES = ("requester", "approver", "developer", "admin", "auditor", "platform_admin")
PEOPLE_FIELDS = ("sub", "dom", "obj", "act")


@dataclass(frozen=True)
class LintIssue:
    severity: Literal["error", "warning"]
    file: str
    line: int  # 0 = the file as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.severity}: {where}: {self.message}"


class _Issues(list[LintIssue]):
    def error(self, file: str, line: int, message: str) -> None:
        self.append(LintIssue("error", file, line, message))

    def warning(self, file: str, line: int, message: str) -> None:
        self.append(LintIssue("warning", file, line, message))


def lint(policies_dir: Path) -> list[LintIssue]:
    texts: dict[str, str] = {}
    issues = _Issues()
    for name in FILES:
        path = Path(policies_dir) / name
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            issues.error(name, 0, f"cannot read {path}: {exc}")
    if issues:
        return issues
    return lint_texts(texts)


def lint_texts(texts: Mapping[str, str]) -> list[LintIssue]:
    issues = _Issues()
    _model(issues, "people_model.conf", texts["people_model.conf"], PEOPLE_FIELDS, PEOPLE_FIELDS)
    _people(issues, texts["people_policy.csv"])
    if _model(issues, "tool_model.conf", texts["tool_model.conf"], REQUEST_FIELDS, TOOL_FIELDS):
        _matcher(issues, texts["tool_model.conf"])
    rules = _tool_rules(issues, texts["tool_policy.csv"])
    _approvals(issues, texts["approvals.yaml"], rules)
    return list(issues)


def _model(issues: _Issues, name: str, text: str, request: tuple[str, ...], policy: tuple[str, ...]) -> bool:
    model = Model()
    try:
        model.load_model_from_text(text)
        tokens = {sec: [t.split("_", 1)[1] for t in model[sec][sec].tokens] for sec in ("r", "p")}
        model["e"]["e"], model["m"]["m"]  # both sections are required
    except Exception as exc:
        issues.error(name, 0, f"not a valid casbin model: {exc!r}")
        return False
    ok = True
    for sec, want in (("r", request), ("p", policy)):
        if tuple(tokens[sec]) != want:
            issues.error(name, 0, f"{sec} must be `{', '.join(want)}`, not `{', '.join(tokens[sec])}`")
            ok = False
    return ok


def _matcher(issues: _Issues, text: str) -> None:
    model = Model()
    model.load_model_from_text(text)
    matcher = model["m"]["m"].value
    if "eval(p_cond)" not in matcher or "r_tenant" not in matcher:
        issues.error("tool_model.conf", 0, "the matcher must check r.tenant and end in eval(p.cond)")
        return
    try:
        compile_condition(matcher, PolicyRule("probe", ALL_TENANTS, "a", "t", "True", "allow"))
    except SyntaxError as exc:
        issues.error("tool_model.conf", 0, f"the matcher does not parse: {exc.msg}")


def _people(issues: _Issues, text: str) -> None:
    file = "people_policy.csv"
    seen: dict[tuple[str, ...], int] = {}
    for number, tokens, error in policy_lines(text):
        if tokens is None:
            issues.error(file, number, f"cannot read the line: {error}")
            continue
        kind, fields = tokens[0], tokens[1:]
        if kind not in ("p", "g") or len(fields) != (4 if kind == "p" else 3):
            issues.error(
                file, number, "expected `p, role, tenant, object, action` or `g, role, role, tenant`"
            )
            continue
        if any(not f for f in fields):
            issues.error(file, number, "a field is empty")
        if any("*" in f or "|" in f for f in fields):
            issues.error(
                file, number, "patterns are not allowed in people policies: name each role and action"
            )
        roles = fields[:1] if kind == "p" else fields[:2]
        for role in roles:
            if role not in KNOWN_ROLES:
                issues.warning(file, number, f"role {role!r} is not one of {', '.join(KNOWN_ROLES)}")
        if kind == "g" and fields[2] == ALL_TENANTS:
            issues.warning(file, number, "role links are per tenant: `all-tenants` here matches no tenant")
        key = tuple(tokens)
        if key in seen:
            issues.warning(file, number, f"the same line as line {seen[key]}")
        seen.setdefault(key, number)


def _pattern_problems(pattern: str) -> list[str]:
    problems = []
    for part in alternatives(pattern):
        if not part:
            problems.append(f"{pattern!r} has an empty alternative")
        elif "*" in part.rstrip("*") or (part.count("*") > 1 and not is_bare_star(part)):
            problems.append(
                f"{part!r}: `*` may only end a pattern (keyMatch reads everything after it as anything)"
            )
        elif is_bare_star(part) and part != "*":
            problems.append(f"{part!r}: write a single `*`")
    return problems


def _covers(broad: str, narrow: str) -> bool:
    """Every name matching `narrow` also matches `broad` (patterns with `|` and a `*` suffix)."""

    def part_covers(b: str, n: str) -> bool:
        return b == n or (b.endswith("*") and n.startswith(b[:-1]))

    return all(any(part_covers(b, n) for b in alternatives(broad)) for n in alternatives(narrow))


def _always_true(tree: ast.expr, condition: str) -> bool:
    """The condition reads nothing of the request and evaluates truthy (e.g. `True`, `1 == 1`)."""
    if any(isinstance(n, ast.Name) and n.id.startswith(("r_", "p_")) for n in ast.walk(tree)):
        return False
    try:
        return bool(SimpleEval(condition.replace("&&", " and ").replace("||", " or ")).eval())
    except Exception:
        return False


def _condition_problems(tree: ast.expr, functions: Mapping[str, object]) -> list[str]:
    facts = set(ToolFacts.model_fields)
    allowed_names = {f"r_{f}" for f in REQUEST_FIELDS}
    problems = []
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in allowed_names:
            problems.append(f"unknown name {node.id.replace('r_', 'r.', 1)!r}")
        elif isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in functions
        ):
            problems.append(
                f"unknown function {ast.unparse(node.func)!r} (known: {', '.join(sorted(functions))})"
            )
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "r_facts"
            and node.attr not in facts
        ):
            problems.append(f"unknown fact r.facts.{node.attr} (known: {', '.join(sorted(facts))})")
    return problems


def _tool_rules(issues: _Issues, text: str) -> list[PolicyRule]:
    file = "tool_policy.csv"
    functions = condition_functions()
    rules: list[PolicyRule] = []
    trivial: dict[str, bool] = {}
    first_line: dict[str, int] = {}
    for number, tokens, error in policy_lines(text):
        if tokens is None:
            issues.error(file, number, f"cannot read the line: {error}")
            continue
        if tokens[0] != "p":
            issues.error(file, number, f"only `p` rules belong here, not {tokens[0]!r}")
            continue
        if len(tokens) != len(TOOL_FIELDS) + 1:
            hint = " (the rule id is missing)" if len(tokens) == len(TOOL_FIELDS) else ""
            issues.error(
                file,
                number,
                f"expected p, tenant, agent, tool, condition, effect, rule_id; "
                f"got {len(tokens) - 1} fields{hint}",
            )
            continue
        tenant, agent, tool, condition, effect, rule_id = tokens[1:]
        rule = PolicyRule(rule_id, tenant, agent, tool, condition, effect, line=number)
        bad = False
        if not rule.rule_id:
            issues.error(file, number, "the rule id is missing")
            bad = True
        elif not RULE_ID.match(rule.rule_id) or rule.rule_id == "default":
            issues.error(
                file, number, f"rule id {rule.rule_id!r}: use lower-case letters, digits and -, not `default`"
            )
        elif rule.rule_id in first_line:
            issues.error(
                file, number, f"rule id {rule.rule_id!r} is already used on line {first_line[rule.rule_id]}"
            )
        first_line.setdefault(rule.rule_id, number)
        if rule.effect not in EFFECTS:
            issues.error(file, number, f"unknown effect {rule.effect!r} (use {', '.join(EFFECTS)})")
            bad = True
        if not rule.tenant or any(c in rule.tenant for c in "*|"):
            issues.error(file, number, "the tenant must be one tenant id or all-tenants (no patterns)")
        for what, pattern in (("agent", rule.agent), ("tool", rule.tool)):
            for problem in _pattern_problems(pattern) if pattern else [f"the {what} is empty"]:
                issues.error(file, number, f"{what} {problem}")
                bad = True
        try:
            tree = condition_tree(rule.condition) if rule.condition else None
        except SyntaxError as exc:
            issues.error(file, number, f"the condition does not parse: {exc.msg}: {rule.condition}")
            continue
        if tree is None:
            issues.error(file, number, "the condition is empty (write True for always)")
            continue
        for problem in _condition_problems(tree, functions):
            issues.error(file, number, f"condition: {problem}")
        trivial[rule.rule_id] = always = _always_true(tree, rule.condition)
        star = any(is_bare_star(p) for p in (*alternatives(rule.agent), *alternatives(rule.tool)))
        if star and rule.effect == "allow" and always:
            issues.error(
                file, number, "over-matching: a bare `*` agent or tool may only allow under a condition"
            )
        if not bad:
            _reachable(issues, rules, rule, trivial)
            rules.append(rule)
    return rules


def _reachable(
    issues: _Issues, earlier: list[PolicyRule], rule: PolicyRule, trivial: dict[str, bool]
) -> None:
    if rule.guard:  # guards apply wherever they stand
        return
    for prior in earlier:
        if prior.guard or prior.tenant not in (ALL_TENANTS, rule.tenant):
            continue
        same = " ".join(prior.condition.split()) == " ".join(rule.condition.split())
        if (
            _covers(prior.agent, rule.agent)
            and _covers(prior.tool, rule.tool)
            and (trivial.get(prior.rule_id) or same)
        ):
            issues.error(
                "tool_policy.csv",
                rule.line,
                f"rule {rule.rule_id} can never be reached: rule {prior.rule_id} (line {prior.line}) "
                "covers it and always matches first",
            )
            return


def _approvals(issues: _Issues, text: str, rules: list[PolicyRule]) -> None:
    file = "approvals.yaml"
    by_id = {r.rule_id: r for r in rules}
    try:
        approvals = parse_approvals(text, by_id)
    except PolicyError as exc:
        for problem in exc.problems:
            issues.error(file, _line_of(text, problem), problem.removeprefix("approvals.yaml: "))
        return
    for key in approvals:
        if key != "default" and by_id[key].effect != "approve":
            issues.warning(file, _line_of(text, key), f"rule {key} does not approve: its settings are unused")


def _line_of(text: str, problem: str) -> int:
    """The line of the top-level key a problem names (`rule <key>`), 0 if none."""
    key = problem.split("rule ", 1)[1].split(":", 1)[0] if "rule " in problem else problem
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return 0
