"""A deliberately broken catalog: each definition carries one problem `validate_catalog` reports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_serializer

from orchestrator.catalog.registry import Catalog, ToolContext, WorkflowDefinition
from orchestrator.contracts import StepSpec, ValidatorSpec


class Args(BaseModel):
    q: str


class Answer(BaseModel):
    answer: str


class Flaky(BaseModel):
    """Serializes `count` as text, which it does not accept back."""

    count: int

    @field_serializer("count")
    def _as_text(self, value: int) -> Any:
        return "many"


async def _read(args: Args, ctx: ToolContext) -> dict[str, Any]:
    return {"q": args.q}


def _agent(catalog: Catalog, name: str, **fields: Any) -> None:
    fields = {"version": "1", "instructions": "x", "tier": "tier-slm", "output_model": Answer, **fields}
    catalog.add_agent(name=name, **fields)


def register(catalog: Catalog) -> None:
    catalog.add_tool("bk_read", "1", description="Read.", side_effect="read", args_model=Args, impl=_read)
    _agent(catalog, "plain")
    _agent(catalog, "no_tier", tier="")
    _agent(catalog, "blank_rung", tiers=["tier-slm", " "])
    _agent(catalog, "ghost_tools", tools=["bk_read@1", "nope@1"])
    _agent(catalog, "bad_judge", validator=ValidatorSpec(kind="judge", judge_agent="missing_judge@1"))
    _agent(catalog, "judge_without_agent", validator=ValidatorSpec(kind="judge"))
    _agent(catalog, "wrong_judge", validator=ValidatorSpec(kind="judge", judge_agent="plain@1"))
    _agent(catalog, "low_conf", validator=ValidatorSpec(kind="confidence", field="certainty"))
    _agent(catalog, "flaky", output_model=Flaky)
    steps = [
        StepSpec(name="a", kind="agent"),
        StepSpec(name="b", kind="tool"),
        StepSpec(name="c", kind="planner", agent="plain@1"),
        StepSpec(name="d", agent="ghost@1"),
        StepSpec(name="e", kind="tool", tool="ghost_tool@1"),
        StepSpec(name="f", kind="planner", agent="plain@1", planner_agents=["ghost_planner@1"]),
        StepSpec(name="a", agent="plain@1"),
        StepSpec(name="g", agent="plain@1", when="steps.later.ok"),
        StepSpec(name="h", kind="tool", tool="bk_read@1", args={"q": "{steps.later.answer}"}),
        StepSpec(name="later", agent="plain"),
    ]
    catalog.add_workflow(WorkflowDefinition(name="bad_steps", version="1", description="x", steps=steps))
    catalog.add_workflow(
        WorkflowDefinition(
            name="first_checkpoint",
            version="1",
            description="x",
            steps=[StepSpec(name="review", kind="checkpoint"), StepSpec(name="go", agent="plain@1")],
            examples=["one", "two"],
        )
    )
    catalog.add_workflow(
        WorkflowDefinition(name="no_steps", version="1", description="x", steps=[], examples=["a", "b"])
    )
