"""A second version of the typed fixture's workflow and helper agent (for versions and diff)."""

from __future__ import annotations

from catalog_fixtures.typed_pkg import Answer, fx_echo, judge, planner
from orchestrator.catalog.api import CatalogModule, ValidatorSpec, agent, agent_step, planner_step

catalog = CatalogModule()

helper_v2 = agent(
    "fx_helper",
    "2",
    instructions="Answer the question briefly.\nUse fx_echo to repeat.",
    tiers=["tier-open", "tier-frontier"],
    tools=[fx_echo],
    output_model=Answer,
    validator=ValidatorSpec(kind="confidence", field="confidence", threshold=0.8),
    review_role="admin",
)

catalog.workflow(
    "fx_flow",
    "2",
    description="Answer a question, then plan follow-ups.",
    category="testing",
    risk_class="medium",
    default_budget_usd="0.30",
    max_task_turns=12,
    examples=["What is the answer to this question?", "Answer this one briefly."],
    steps=[
        agent_step("answer", helper_v2),
        planner_step("plan", planner, [helper_v2], require_plan_review=True),
    ],
)
catalog.add(judge)  # already registered by typed_pkg: registering it again is a no-op

register = catalog.register
