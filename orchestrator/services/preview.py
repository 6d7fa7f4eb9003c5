"""Preview: before anything starts, what a request would run, what it may ask of people, and
what it may cost. Nothing is written and no workflow starts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import estimate_worst_case
from orchestrator.contracts import AgentSpec, WorkflowSpec
from orchestrator.policy.rules import name_match
from orchestrator.services.schemas import TaskCreate
from orchestrator.services.state import AppState

LIKELY_TURNS = 3  # a typical agent step: a tool call or two, then the answer
LIKELY_COMPLETION = 300  # tokens of a typical answer


def preview(
    state: AppState, tenant_id: str, body: TaskCreate, spec: WorkflowSpec, intake: dict[str, Any] | None
) -> dict[str, Any]:
    prices = PriceTable.load(state.settings.policies_dir / "prices.yaml")
    steps: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    worst = likely = Decimal(0)
    for step in spec.steps:
        entry: dict[str, Any] = {"name": step.name, "kind": step.kind}
        if step.when:
            entry["when"] = step.when
        agents = [spec.agents[step.agent]] if step.kind in ("agent", "planner") else []
        agents += [spec.agents[ref] for ref in step.planner_agents if ref in spec.agents]
        for agent in agents:
            w, lk = _agent_cost(prices, agent, len(body.input))
            worst, likely = worst + w, likely + lk
        if step.kind in ("agent", "planner"):
            agent = spec.agents[step.agent]
            entry.update(
                agent=agent.ref,
                ladder=agent.ladder,
                tools=_tools(state, tenant_id, spec, agent.name, agent.tools),
            )
            if agent.validator is not None:
                checkpoints.append(
                    {"step": step.name, "kind": "output_review", "when": "if no rung's answer is accepted"}
                )
        if step.kind == "planner":
            entry["planner_agents"] = step.planner_agents
            if step.require_plan_review:
                checkpoints.append({"step": step.name, "kind": "plan_review", "when": "always"})
        if step.kind == "tool":
            entry["tools"] = _tools(state, tenant_id, spec, f"workflow:{spec.name}", [step.tool])
        if step.kind == "checkpoint":
            checkpoints.append(
                {
                    "step": step.name,
                    "kind": step.review,
                    "assignee_role": step.assignee_role,
                    "when": step.when or "always",
                }
            )
        for tool in entry.get("tools", []):
            if tool["likely"] in ("approve", "depends on the arguments"):
                checkpoints.append(
                    {
                        "step": step.name,
                        "kind": "tool_approval",
                        "tool": tool["name"],
                        "when": tool["likely"],
                        "rules": tool["rules"],
                    }
                )
        steps.append(entry)
    limit = body.budget_usd or (Decimal(spec.default_budget_usd) if spec.default_budget_usd else None)
    if limit is None:
        limit = state.budgets.rules.task.default_limit_usd
    return {
        "workflow": spec.ref,
        "description": spec.description,
        "intake": intake,
        "data_classification": spec.data_classification,
        "risk_class": spec.risk_class,
        "steps": steps,
        "checkpoints": checkpoints,
        "budget": {
            "task_limit_usd": str(limit),
            "likely_usd": str(likely.quantize(Decimal("0.000001"))),
            "worst_case_usd": str(worst.quantize(Decimal("0.000001"))),
            "note": "estimates from the price table: likely = first rung, 3 turns; worst case = every rung, every turn at max_tokens",
        },
    }


def _agent_cost(prices: PriceTable, agent: AgentSpec, input_chars: int) -> tuple[Decimal, Decimal]:
    prompt_chars = input_chars + len(agent.instructions) + 2000  # schema and tool descriptions
    worst = sum(
        (
            estimate_worst_case(prices, tier, prompt_chars, agent.max_tokens) * agent.max_turns
            for tier in agent.ladder
        ),
        Decimal(0),
    )
    first = prices.lookup(None, agent.ladder[0])
    per_turn = first.input * (prompt_chars // 4) + first.output * min(LIKELY_COMPLETION, agent.max_tokens)
    return worst, per_turn * min(LIKELY_TURNS, agent.max_turns)


def _tools(
    state: AppState, tenant_id: str, spec: WorkflowSpec, agent: str, refs: list[str]
) -> list[dict[str, Any]]:
    """Each tool with the decisions the policy rules that mention it could give this agent."""
    rules = [r for r in state.policy.view().rules if r.tenant in ("all-tenants", tenant_id)]
    out = []
    for ref in refs:
        name = ref.split("@", 1)[0]
        tool = spec.tools.get(name)
        matching = [r for r in rules if name_match(agent, r.agent) and name_match(name, r.tool)]
        effects = {r.effect for r in matching if not r.guard}
        if not effects:
            likely = "deny"
        elif len(effects) == 1:
            likely = effects.pop()
        else:
            likely = "depends on the arguments"
        out.append(
            {
                "name": name,
                "side_effect": tool.side_effect if tool else "unknown",
                "likely": likely,
                "rules": [r.rule_id for r in matching],
            }
        )
    return out
