"""A plan is refused when it names an unknown agent, a tool the agent lacks, or a tool the policy
denies the agent (checked against the shipped policies)."""

from __future__ import annotations

from repo_paths import SHIPPED_POLICIES

from orchestrator.contracts import AgentSpec, ValidatePlanInput
from orchestrator.policy.engine import PolicyEngine
from workers.activities.plans import PlanActivities


def agent(name: str, tools: list[str]) -> AgentSpec:
    return AgentSpec(
        name=name,
        version="1",
        instructions="",
        tier="tier-open",
        tools=tools,
        output_model="m",
        output_schema={},
    )


AGENTS = {
    "market_researcher": agent("market_researcher", ["issue_refund@1"]),  # holds a tool no rule grants it
    "refund_agent": agent("refund_agent", ["lookup_order@1", "issue_refund@1"]),
}
PLANNER_AGENTS = ["market_researcher@1", "refund_agent@1"]
plans = PlanActivities(PolicyEngine(SHIPPED_POLICIES))


def check(steps: list[dict]) -> tuple[bool, list[str]]:  # type: ignore[type-arg]
    result = plans._validate(
        ValidatePlanInput(
            tenant_id="acme",
            plan={"rationale": "because", "steps": steps},
            planner_agents=PLANNER_AGENTS,
            agents=AGENTS,
        )
    )
    return result.ok, result.problems


def test_a_plan_within_catalog_and_policy_passes() -> None:
    ok, problems = check(
        [{"name": "look", "agent": "refund_agent@1", "instructions": "x", "tools": ["lookup_order"]}]
    )
    assert ok and problems == []


def test_unknown_agent_is_refused() -> None:
    ok, problems = check([{"name": "pwn", "agent": "hacker_agent@1", "instructions": "x"}])
    assert not ok and "unknown agent 'hacker_agent@1'" in problems[0]


def test_tool_the_policy_denies_is_refused() -> None:
    ok, problems = check(
        [{"name": "pay", "agent": "market_researcher@1", "instructions": "x", "tools": ["issue_refund"]}]
    )
    assert not ok and "policy denies agent market_researcher the tool 'issue_refund'" in problems[0]


def test_tool_the_agent_lacks_is_refused() -> None:
    ok, problems = check(
        [{"name": "mail", "agent": "refund_agent@1", "instructions": "x", "tools": ["delete_everything"]}]
    )
    assert not ok and "has no tool 'delete_everything'" in problems[0]
