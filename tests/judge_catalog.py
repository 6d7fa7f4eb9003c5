"""A test catalog: a summary agent on a two-rung ladder whose answers a judge agent reviews."""

from __future__ import annotations

from pydantic import BaseModel

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec, ValidatorSpec
from orchestrator.demo.catalog.models import Summary


class Verdict(BaseModel):
    approve: bool
    reason: str


def register(catalog: Catalog) -> None:
    catalog.add_agent(
        name="summary_judge",
        version="1",
        instructions="Judge whether the summary is faithful and useful.",
        tier="tier-open",
        max_turns=2,
        max_tokens=200,
        output_model=Verdict,
    )
    catalog.add_agent(
        name="judged_summary",
        version="1",
        instructions="Summarise the text.",
        tier="tier-slm",
        tiers=["tier-slm", "tier-frontier"],
        validator=ValidatorSpec(kind="judge", judge_agent="summary_judge@1"),
        max_turns=2,
        max_tokens=400,
        output_model=Summary,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="judged_summary",
            version="1",
            description="test only",
            steps=[StepSpec(name="summarise", agent="judged_summary@1")],
            examples=["Summarise this", "Condense this memo"],
        )
    )
