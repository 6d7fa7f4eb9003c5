"""A small catalog package written with the typed API: two tools, three agents (one with a tier
ladder judged by another), and one workflow using every step kind."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from orchestrator.catalog.api import (
    CatalogModule,
    ToolContext,
    ValidatorSpec,
    agent,
    agent_step,
    checkpoint_step,
    planner_step,
    tool,
    tool_step,
)
from orchestrator.contracts import Plan


class EchoArgs(BaseModel):
    text: str = Field(min_length=1, max_length=200)


class NoteArgs(BaseModel):
    note: str = Field(min_length=1)


class Answer(BaseModel):
    answer: str
    confidence: float = Field(ge=0, le=1)


class Verdict(BaseModel):
    approve: bool
    reason: str


catalog = CatalogModule()


@catalog.tool(side_effect="read")
async def fx_echo(args: EchoArgs, ctx: ToolContext) -> dict[str, Any]:
    """Echo the text back, unchanged."""
    return {"text": args.text}


@tool("fx_save_note", "2", side_effect="write", cost_usd="0.001")
async def save_note(args: NoteArgs, ctx: ToolContext) -> dict[str, Any]:
    """Save a note for later."""
    return {"saved": args.note}


judge = catalog.agent(
    "fx_judge",
    "1",
    instructions="Approve answers that answer the question.",
    tier="tier-frontier",
    output_model=Verdict,
    max_turns=1,
)

# Not added to the module: the workflow's steps bring it (and its tools) in.
helper = agent(
    "fx_helper",
    "1",
    instructions="Answer the question; use fx_echo to repeat, fx_save_note to keep a note.",
    tiers=["tier-slm", "tier-frontier"],
    tools=[fx_echo, save_note],
    output_model=Answer,
    validator=ValidatorSpec(kind="judge", judge_agent=judge.ref),
    review_role="admin",
    step_budget_usd="0.05",
)

planner = catalog.agent(
    "fx_planner", "1", instructions="Plan the work.", tier="tier-frontier", output_model=Plan
)

flow = catalog.workflow(
    "fx_flow",
    "1",
    description="Answer a question, keep a note, have it reviewed, then plan follow-ups.",
    category="testing",
    risk_class="medium",
    data_classification="internal",
    default_budget_usd="0.25",
    max_task_turns=12,
    examples=["What is the answer to this question?", "Answer me this and keep a note."],
    steps=[
        agent_step("answer", helper),
        tool_step("save", save_note, {"note": "{steps.answer.answer}"}),
        checkpoint_step("review", assignee_role="approver"),
        planner_step("plan", planner, [helper], require_plan_review=True, when="steps.answer.answer"),
    ],
)

register = catalog.register
