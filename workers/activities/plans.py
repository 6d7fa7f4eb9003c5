"""Validating a planner's plan against the catalog and the policies before anything runs."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from orchestrator.contracts import VALIDATE_PLAN, Plan, ValidatePlanInput, ValidatePlanResult
from orchestrator.policy.engine import PolicyEngine
from orchestrator.policy.rules import name_match
from workers.activities import implements
from workers.activities.governance import validation_message


class PlanActivities:
    def __init__(self, policy: PolicyEngine) -> None:
        self._policy = policy

    @implements(VALIDATE_PLAN)
    async def validate(self, inp: ValidatePlanInput) -> ValidatePlanResult:
        return await asyncio.to_thread(self._validate, inp)

    def may_use(self, tenant_id: str, agent: str, tool: str) -> bool:
        """Some rule could let `agent` call `tool` in this tenant (allow or approve); conditions
        on arguments are checked when the call is made, so only outright denial refuses a plan."""
        for rule in self._policy.view().rules:
            if rule.guard:
                continue
            in_tenant = rule.tenant in ("all-tenants", tenant_id)
            if in_tenant and name_match(agent, rule.agent) and name_match(tool, rule.tool):
                if rule.effect in ("allow", "approve"):
                    return True
        return False

    def _validate(self, inp: ValidatePlanInput) -> ValidatePlanResult:
        try:
            plan = Plan.model_validate(inp.plan)
        except ValidationError as exc:
            return ValidatePlanResult(
                ok=False, problems=[f"the plan does not match the Plan model: {validation_message(exc)}"]
            )
        problems: list[str] = []
        allowed = ", ".join(inp.planner_agents)
        names = [s.name for s in plan.steps]
        if len(set(names)) != len(names):
            problems.append("step names must be unique")
        for step in plan.steps:
            spec = inp.agents.get(step.agent.split("@", 1)[0])
            if step.agent not in inp.planner_agents or spec is None:
                problems.append(
                    f"step {step.name!r} names unknown agent {step.agent!r}; the planner may use: {allowed}"
                )
                continue
            agent_tools = {ref.split("@", 1)[0] for ref in spec.tools}
            for tool in step.tools:
                if tool not in agent_tools:
                    problems.append(f"step {step.name!r}: agent {step.agent} has no tool {tool!r}")
                elif not self.may_use(inp.tenant_id, spec.name, tool):
                    problems.append(f"step {step.name!r}: policy denies agent {spec.name} the tool {tool!r}")
        if problems:
            return ValidatePlanResult(ok=False, problems=problems)
        return ValidatePlanResult(ok=True, plan=plan)
