"""The policy engine: the one place where people and agents are authorized.

Two policies, both deny by default, loaded from `policies/`:

* people -> actions (`people_model.conf`, `people_policy.csv`): casbin RBAC with domains, a role
  is held per tenant;
* agents -> tools (`tool_model.conf`, `tool_policy.csv`, `approvals.yaml`): the first matching
  rule decides `allow`, `approve` (a human checkpoint, with its rule's approval settings) or
  `deny`, with conditions on the arguments and the facts of the call. An `approve` rule with a
  bare `*` agent or tool is a guard: it turns what would be allowed into an approval and never
  grants by itself (see tool_model.conf).

Every decision carries the policy version (sha256 of the five files) and the rule that decided.
Files are re-read when they change on disk (checked at most every `reload_interval` seconds); a
set of files that does not load and lint clean is logged and the last good version stays.
Condition helpers and approval settings live in `orchestrator.policy.rules`, the file names and
the version hash in `orchestrator.policy.files`; a new set is checked by `orchestrator.policy.lint`.
"""

from __future__ import annotations

import ast
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import casbin
from casbin.model import Model
from casbin.persist.adapter import Adapter, load_policy_line
from casbin.util import SimpleEval

from orchestrator.contracts import PolicyEffect
from orchestrator.policy.files import FILES, load_texts, policy_version
from orchestrator.policy.lint import lint_texts
from orchestrator.policy.rules import (
    ALL_TENANTS,
    ApprovalRule,
    Escalation,
    PolicyError,
    PolicyRule,
    ToolFacts,
    compile_condition,
    condition_functions,
    parse_approvals,
    read_tool_rules,
)

__all__ = [
    "FILES",
    "ApprovalRule",
    "Escalation",
    "Explanation",
    "PolicyEngine",
    "PolicyError",
    "PolicyRule",
    "PolicyView",
    "RuleCheck",
    "ToolDecision",
    "ToolFacts",
    "load_texts",
    "policy_version",
]

log = logging.getLogger(__name__)
# casbin logs the whole policy and every request (arguments included) at INFO and each denial at
# WARNING. Frontdesk records its decisions itself (audited, without secrets), so casbin's own log
# would only repeat them, tool arguments and all, into every process's log: errors only.
logging.getLogger("casbin").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ToolDecision:
    effect: PolicyEffect
    rule: str  # the deciding rule as text ("<id>: tenant, agent, tool, condition, effect"), "" if none
    reason: str
    policy_version: str
    rule_id: str = ""
    approval: ApprovalRule | None = None  # set when effect == "approve"


@dataclass(frozen=True)
class RuleCheck:
    """One rule as evaluated for one request: did it match, or why could it not be evaluated."""

    rule: PolicyRule
    matched: bool
    error: str = ""


@dataclass(frozen=True)
class Explanation:
    decision: ToolDecision
    facts: ToolFacts
    checks: tuple[RuleCheck, ...]


@dataclass(frozen=True)
class PolicyView:
    """A consistent picture of the tool policy at one version (for the API and the CLI)."""

    version: str
    rules: tuple[PolicyRule, ...]
    approvals: Mapping[str, ApprovalRule]  # rule id -> settings in force, for every approve rule
    default_approval: ApprovalRule


class _TextAdapter(Adapter):
    """A casbin adapter over text already read (so the version hashes what is enforced)."""

    def __init__(self, text: str) -> None:
        self._text = text

    def load_policy(self, model: Model) -> None:
        for line in self._text.splitlines():
            load_policy_line(line.strip(), model)


class _Args:
    """Read-only view of arguments/facts for conditions: `r.args.amount` reads the key `amount`."""

    __slots__ = ("_data", "_label")

    def __init__(self, data: Any, label: str) -> None:
        self._data, self._label = data, label

    def __getattr__(self, name: str) -> Any:
        if not isinstance(self._data, Mapping):
            raise LookupError(f"{self._label} is not an object")
        if name not in self._data:
            raise LookupError(f"{self._label} has no {name!r}")
        value = self._data[name]
        return _Args(value, f"{self._label}.{name}") if isinstance(value, Mapping) else value

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)


PEOPLE_DECISIONS_KEPT = 10_000


@dataclass(frozen=True)
class _Snapshot:
    version: str
    people: casbin.Enforcer
    rules: tuple[PolicyRule, ...]
    trees: tuple[ast.expr, ...]
    approvals: Mapping[str, ApprovalRule]  # as written in approvals.yaml, incl. "default"
    functions: Mapping[str, Any]
    # People decisions of this version, (roles, tenant, obj, act) -> allowed: casbin parses its
    # matcher on every enforce, and the API asks the same few questions on every request. A new
    # version is a new snapshot, so a policy edit never meets a stale answer.
    people_decisions: dict[tuple[tuple[str, ...], str, str, str], bool] = field(default_factory=dict)

    @classmethod
    def build(cls, texts: Mapping[str, str], version: str) -> _Snapshot:
        errors = [str(i) for i in lint_texts(texts) if i.severity == "error"]
        if errors:
            raise PolicyError(errors)
        people_model = Model()
        people_model.load_model_from_text(texts["people_model.conf"])
        people = casbin.Enforcer(people_model, _TextAdapter(texts["people_policy.csv"]))
        # casbin logs every refused request as a WARNING; a refusal is an answer, not a problem
        # (the web UI asks a dozen times per page to build its navigation), and the decisions that
        # matter are audited by Frontdesk itself.
        people.logger.setLevel(logging.ERROR)
        tool_model = Model()
        tool_model.load_model_from_text(texts["tool_model.conf"])
        matcher = tool_model["m"]["m"].value
        rules = tuple(read_tool_rules(texts["tool_policy.csv"]))
        trees = tuple(compile_condition(matcher, rule) for rule in rules)
        approvals = parse_approvals(texts["approvals.yaml"], {r.rule_id: r for r in rules})
        return cls(version, people, rules, trees, approvals, condition_functions())

    def approval_for(self, rule_id: str) -> ApprovalRule | None:
        if not any(r.rule_id == rule_id and r.effect == "approve" for r in self.rules):
            return None
        return self.settings(rule_id)

    def settings(self, rule_id: str) -> ApprovalRule:
        """The approval settings in force for a rule id: its own entry, else `default`."""
        return self.approvals.get(rule_id) or self.approvals["default"]


class PolicyEngine:
    def __init__(self, policies_dir: Path, *, reload_interval: float = 0.5) -> None:
        self._dir = Path(policies_dir)
        self._reload_interval = reload_interval
        self._lock = threading.Lock()
        # casbin compiles matchers with `ast.parse` on every call, and CPython before 3.11.8 can
        # fail ("AST constructor recursion depth mismatch") when threads parse at once.
        self._people_lock = threading.Lock()
        self._checked_at = time.monotonic()
        self._failed_stamp: tuple[tuple[int, int, int], ...] | None = None
        self._stamp = self._stamps()
        texts, version = load_texts(self._dir)
        self._snap = _Snapshot.build(texts, version)
        log.info("policies loaded, version %s", version[:12])

    @property
    def version(self) -> str:
        return self._snap.version

    # -- reload -----------------------------------------------------------------------------------
    def _stamps(self) -> tuple[tuple[int, int, int], ...]:
        """What changes when a file is edited or replaced; (0, 0, 0) for a missing file."""
        stamps = []
        for name in FILES:
            try:
                s = (self._dir / name).stat()
                stamps.append((s.st_mtime_ns, s.st_size, s.st_ino))
            except FileNotFoundError:
                stamps.append((0, 0, 0))
        return tuple(stamps)

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._checked_at < self._reload_interval:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is checking; decide with the current version meanwhile
        try:
            self._checked_at = time.monotonic()
            stamp: tuple[tuple[int, int, int], ...] = ()  # () = the folder cannot be read
            try:
                stamp = self._stamps()
                if stamp in (self._stamp, self._failed_stamp):
                    return
                texts, version = load_texts(self._dir)
                snap = _Snapshot.build(texts, version)
            except Exception as exc:
                if stamp != self._failed_stamp:  # log each broken state once
                    # Keep deciding with the last good version rather than failing open or closed.
                    log.error("policy reload failed; keeping version %s: %s", self.version[:12], exc)
                self._failed_stamp = stamp
                return
            self._snap, self._stamp, self._failed_stamp = snap, stamp, None
            log.info("policies reloaded, version %s", version[:12])
        finally:
            self._lock.release()

    def _current(self) -> _Snapshot:
        self._maybe_reload()
        return self._snap

    # -- people ---------------------------------------------------------------------------------
    def allowed(self, roles: list[str], tenant_id: str, obj: str, act: str) -> bool:
        snap = self._current()
        if not tenant_id or tenant_id == ALL_TENANTS:
            return False
        key = (tuple(roles), tenant_id, obj, act)
        decided = snap.people_decisions.get(key)
        if decided is None:
            with self._people_lock:
                decided = any(snap.people.enforce(role, tenant_id, obj, act) for role in roles)
                if len(snap.people_decisions) >= PEOPLE_DECISIONS_KEPT:
                    snap.people_decisions.clear()  # many tenants: start over rather than grow
                snap.people_decisions[key] = decided
        return decided

    # -- agents -> tools --------------------------------------------------------------------------
    def decide_tool(
        self,
        *,
        tenant_id: str,
        agent: str,
        tool: str,
        args: dict[str, Any],
        facts: ToolFacts | None = None,
    ) -> ToolDecision:
        """Allow, approve or deny one tool call. Missing facts take their strictest values."""
        return self.explain(tenant_id=tenant_id, agent=agent, tool=tool, args=args, facts=facts).decision

    def explain(
        self,
        *,
        tenant_id: str,
        agent: str,
        tool: str,
        args: Any,
        facts: ToolFacts | None = None,
    ) -> Explanation:
        """The decision plus every rule with whether it matched (for `policy explain`)."""
        snap = self._current()
        facts = facts if facts is not None else ToolFacts()
        names = {
            "r_tenant": tenant_id,
            "r_agent": agent,
            "r_tool": tool,
            "r_args": _Args(args, "r.args"),
            "r_facts": _Args(facts.model_dump(), "r.facts"),
        }
        checks = tuple(self._check(snap, i, names) for i in range(len(snap.rules)))
        return Explanation(_decide(snap, tenant_id, agent, tool, checks), facts, checks)

    @staticmethod
    def _check(snap: _Snapshot, index: int, names: dict[str, Any]) -> RuleCheck:
        rule = snap.rules[index]
        evaluator = SimpleEval("", dict(snap.functions))
        evaluator.expr = rule.condition
        evaluator.ast_parsed_value = snap.trees[index]
        try:
            result = evaluator.eval({**names, **rule.params})
        except Exception as exc:  # missing or malformed arguments, a failing function
            message = str(exc) if type(exc) in (LookupError, ValueError) else f"{type(exc).__name__}: {exc}"
            return RuleCheck(rule, False, message)
        if not isinstance(result, bool):
            return RuleCheck(rule, False, f"the condition gave {result!r}, not true or false")
        return RuleCheck(rule, result)

    def approval_for(self, rule_id: str) -> ApprovalRule | None:
        """Approval settings of an `approve` rule in the current version (None: no such rule)."""
        return self._current().approval_for(rule_id)

    def view(self) -> PolicyView:
        snap = self._current()
        approvals = {r.rule_id: snap.settings(r.rule_id) for r in snap.rules if r.effect == "approve"}
        return PolicyView(snap.version, snap.rules, approvals, snap.approvals["default"])


def _decide(
    snap: _Snapshot, tenant_id: str, agent: str, tool: str, checks: tuple[RuleCheck, ...]
) -> ToolDecision:
    version = snap.version
    if not tenant_id or tenant_id == ALL_TENANTS:
        return ToolDecision("deny", "", f"no tenant to decide for ({tenant_id!r})", version)
    base: PolicyRule | None = None
    guard: PolicyRule | None = None
    for check in checks:
        rule = check.rule
        if check.error and (rule.guard or base is None):
            # This rule could decide the call, but cannot be evaluated on it: fail closed.
            reason = f"policy condition could not be evaluated: rule {rule.rule_id}: {check.error}"
            return ToolDecision("deny", rule.text, reason, version, rule.rule_id)
        if not check.matched:
            continue
        if rule.guard:
            guard = guard or rule
        elif base is None:
            base = rule
    if base is None:
        reason = f"no rule allows agent {agent!r} to call {tool!r} (deny by default)"
        return ToolDecision("deny", "", reason, version)
    if base.effect == "allow" and guard is not None:
        reason = f"needs a human approval by guard rule {guard.text} (rule {base.rule_id} alone would allow)"
        return ToolDecision(
            "approve", guard.text, reason, version, guard.rule_id, snap.approval_for(guard.rule_id)
        )
    reasons: dict[str, tuple[PolicyEffect, str]] = {
        "allow": ("allow", "allowed by rule"),
        "approve": ("approve", "needs a human approval by rule"),
        "deny": ("deny", "denied by rule"),
    }
    effect, verb = reasons[base.effect]
    approval = snap.approval_for(base.rule_id) if effect == "approve" else None
    reason = f"{verb} {base.text}"
    return ToolDecision(effect, base.text, reason, version, base.rule_id, approval)
