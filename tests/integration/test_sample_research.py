"""The research brief through the planner, end to end on the real stack (API -> Temporal ->
worker -> LiteLLM proxy -> demo model): the plan, its repair turn, and plans that are refused."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any

from orchestrator.contracts import Plan
from orchestrator.demo.catalog.examples import EXAMPLES
from orchestrator.demo.catalog.research_models import ResearchBrief, ResearchNote

WORKFLOW = "research_brief@1"
REQUEST = EXAMPLES["research_brief"][0]
SPECIALISTS = {"market_researcher@1", "technology_researcher@1", "finance_researcher@1", "brief_writer@1"}
TERMINAL = {"completed", "failed", "rejected", "cancelled"}


def bad_plan(agent: str = "hacker_agent@1", tools: list[str] | None = None) -> str:
    return json.dumps(
        {
            "rationale": "Collect everything, then write.",
            "steps": [
                {"name": "probe", "agent": agent, "instructions": "Find the secrets.", "tools": tools or []},
                {"name": "write_brief", "agent": "brief_writer@1", "instructions": "Write it up."},
            ],
        }
    )


async def script(demo_scripts: Any, responses: list[dict[str, Any]]) -> str:
    key = f"[script:research-{secrets.token_hex(4)}]"
    r = await demo_scripts.post("/_demo/scripts", json={"key": key, "responses": responses})
    assert r.status_code in (200, 201), r.text
    return key


def total_cost(task: dict[str, Any]) -> Decimal:
    return sum((Decimal(c["cost_usd"]) for c in task["model_calls"]), Decimal(0))


async def test_research_brief_end_to_end(stack: Any, record_history: Any) -> None:
    task = await stack.submit(REQUEST, workflow=WORKFLOW)
    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "completed", done["error"]
    assert done["outcome"] == "resolved"
    assert done["workflow"] == WORKFLOW

    output = done["output"]
    plan = Plan.model_validate(output["plan"])
    agents = [s.agent for s in plan.steps]
    assert agents[-1] == "brief_writer@1" and 2 <= len(agents) - 1 <= 3
    assert set(agents) <= SPECIALISTS
    for step in plan.steps[:-1]:
        note = ResearchNote.model_validate(output["results"][step.name])
        assert note.question in step.instructions
    brief = ResearchBrief.model_validate(output["final"])
    assert "heat pumps in Germany" in brief.title
    assert len(brief.sections) == len(plan.steps) - 1  # one section per researcher's note

    # The task's steps show the planned steps, in order, each by the agent the plan named.
    steps = [(s["name"], s["agent"], s["status"]) for s in done["steps"]]
    assert steps == [("plan", "research_planner@1", "completed")] + [
        (f"plan.{s.name}", s.agent, "completed") for s in plan.steps
    ]

    # One model call per agent, each on its agent's tier; the task's cost is all of them.
    calls = [(c["step"], c["tier"]) for c in done["model_calls"]]
    expected = [("plan", "tier-frontier")] + [
        (f"plan.{s.name}", "tier-frontier" if s.agent == "brief_writer@1" else "tier-open")
        for s in plan.steps
    ]
    assert sorted(calls) == sorted(expected)
    assert all(c["ok"] for c in done["model_calls"])
    assert total_cost(done) > 0
    assert Decimal(done["cost"]["total_usd"]) == total_cost(done)
    assert done["tool_calls"] == [] and done["checkpoints"] == []
    await record_history(task["id"], "research_brief")


async def test_invalid_plan_gets_one_repair_turn(stack: Any, demo_scripts: Any) -> None:
    key = await script(demo_scripts, [{"content": bad_plan()}, {"default": True}])
    task = await stack.submit(f"{REQUEST} {key}", workflow=WORKFLOW)
    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "completed", done["error"]

    plan = Plan.model_validate(done["output"]["plan"])
    assert {s.agent for s in plan.steps} <= SPECIALISTS  # the repaired plan ran, not the first
    assert not any("probe" in s["name"] for s in done["steps"])
    planner_calls = [c["step"] for c in done["model_calls"] if c["agent"] == "research_planner"]
    assert planner_calls == ["plan", "plan/repair"]
    assert len(done["model_calls"]) == 2 + len(plan.steps)  # the refused plan's call counts too
    assert Decimal(done["cost"]["total_usd"]) == total_cost(done)

    # The repair turn told the planner what was wrong.
    calls = (await demo_scripts.get("/_demo/calls", params={"key": key})).json()["calls"]
    repair = [c for c in calls if c["script_step"] == 1]
    assert repair, calls
    prompt = json.dumps(repair[0]["body"]["messages"])
    assert "hacker_agent@1" in prompt and "not valid" in prompt


async def test_plan_refused_twice_fails_naming_the_unknown_agent(stack: Any, demo_scripts: Any) -> None:
    key = await script(demo_scripts, [{"content": bad_plan()}, {"content": bad_plan()}])
    task = await stack.submit(f"{REQUEST} {key}", workflow=WORKFLOW)
    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "failed"
    assert done["outcome"] == "unresolved"
    assert "refused" in done["error"] and "hacker_agent@1" in done["error"], done["error"]
    assert [(s["name"], s["status"]) for s in done["steps"]] == [("plan", "failed")]
    assert [c["step"] for c in done["model_calls"]] == ["plan", "plan/repair"]  # nothing else ran
    assert Decimal(done["cost"]["total_usd"]) == total_cost(done) > 0


async def test_plan_naming_a_denied_tool_is_refused(stack: Any, demo_scripts: Any) -> None:
    denied = bad_plan(agent="market_researcher@1", tools=["issue_refund"])
    key = await script(demo_scripts, [{"content": denied}, {"content": denied}])
    task = await stack.submit(f"{REQUEST} {key}", workflow=WORKFLOW)
    done = await stack.wait(task["id"], TERMINAL, timeout=120)
    assert done["status"] == "failed"
    assert "refused" in done["error"] and "issue_refund" in done["error"], done["error"]
    assert [(s["name"], s["status"]) for s in done["steps"]] == [("plan", "failed")]
    assert done["tool_calls"] == []  # refused before anything ran
