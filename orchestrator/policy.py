"""The policy engine: the one place where people and agents are authorized.

Two casbin enforcers, both deny by default, loaded from `policies/`:

* people -> actions (`people_model.conf`, `people_policy.csv`): RBAC with domains, a role is
  held per tenant;
* agents -> tools (`tool_model.conf`, `tool_policy.csv`): first matching rule decides `allow`,
  `approve` (a human checkpoint) or `deny`, with conditions on the arguments.

Every decision carries the policy version (sha256 of the four files) and the rule that decided.
Files are re-read when they change on disk, checked at most every `reload_interval` seconds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin

from workers.domain import PolicyEffect

log = logging.getLogger(__name__)

FILES = ("people_model.conf", "people_policy.csv", "tool_model.conf", "tool_policy.csv")


@dataclass(frozen=True)
class ToolDecision:
    effect: PolicyEffect
    rule: str
    reason: str
    policy_version: str


class PolicyEngine:
    def __init__(self, policies_dir: Path, *, reload_interval: float = 0.5) -> None:
        self._dir = policies_dir
        self._reload_interval = reload_interval
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._stamp: tuple[float, ...] = ()
        self._load()

    @property
    def version(self) -> str:
        return self._version

    def _load(self) -> None:
        paths = [self._dir / name for name in FILES]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"policy files missing: {', '.join(missing)}")
        people = casbin.Enforcer(str(paths[0]), str(paths[1]))
        tools = casbin.Enforcer(str(paths[2]), str(paths[3]))
        digest = hashlib.sha256()
        for p in paths:
            digest.update(p.read_bytes())
        self._people, self._tools = people, tools
        self._version = digest.hexdigest()
        self._stamp = tuple(p.stat().st_mtime_ns for p in paths)
        log.info("policies loaded, version %s", self._version[:12])

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._reload_interval:
            return
        with self._lock:
            self._checked_at = now
            stamp = tuple((self._dir / name).stat().st_mtime_ns for name in FILES)
            if stamp != self._stamp:
                try:
                    self._load()
                except Exception:
                    # Keep deciding with the last good version rather than failing open or closed.
                    log.exception("policy reload failed; keeping version %s", self._version[:12])

    # -- people ---------------------------------------------------------------------------------
    def allowed(self, roles: list[str], tenant_id: str, obj: str, act: str) -> bool:
        self._maybe_reload()
        return any(self._people.enforce(role, tenant_id, obj, act) for role in roles)

    # -- agents -> tools --------------------------------------------------------------------------
    def decide_tool(self, *, tenant_id: str, agent: str, tool: str, args: dict[str, Any]) -> ToolDecision:
        self._maybe_reload()
        version = self._version
        try:
            matched, rule = self._tools.enforce_ex(tenant_id, agent, tool, args)
        except Exception as exc:  # a condition that cannot be evaluated on these arguments
            return ToolDecision("deny", "", f"policy condition could not be evaluated: {exc}", version)
        if not matched or not rule:
            return ToolDecision(
                "deny", "", f"no rule allows agent {agent!r} to call {tool!r} (deny by default)", version
            )
        effect = rule[-1].strip()
        rule_text = ", ".join(rule)
        if effect not in ("allow", "approve", "deny"):
            return ToolDecision("deny", rule_text, f"rule has an unknown effect {effect!r}", version)
        reasons = {
            "allow": "allowed by rule",
            "approve": "needs a human approval by rule",
            "deny": "denied by rule",
        }
        return ToolDecision(effect, rule_text, f"{reasons[effect]}: {rule_text}", version)  # type: ignore[arg-type]
