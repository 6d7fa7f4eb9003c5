"""Definitions: what a workflow, an agent and a tool are, pinned into every task at submit time.

Pure pydantic models shared by the catalog, the API and the workflows. Fields added later get
defaults so recorded histories stay replayable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SideEffect = Literal["read", "write", "irreversible"]
TaskStatus = Literal["queued", "running", "waiting", "completed", "failed", "cancelled", "rejected"]
TaskOutcome = Literal["resolved", "unresolved", "escalated"]
PolicyEffect = Literal["allow", "deny", "approve"]
DecisionKind = Literal["approve", "reject", "approve_with_edits", "request_changes"]
CheckpointKind = Literal["tool_approval", "budget_raise", "plan_review", "output_review"]
CheckpointStatus = Literal["open", "approved", "rejected", "changes_requested", "cancelled"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "rejected"})

# --- definitions (pinned into every task at submit time) ---------------------------------------


class ToolSpec(BaseModel):
    name: str
    version: str
    description: str
    side_effect: SideEffect
    args_schema: dict[str, Any]
    cost_usd: str | None = None  # a declared cost per run, counted toward the budgets

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class ValidatorSpec(BaseModel):
    """How an agent step's answer is accepted before the ladder moves up a rung.

    `output_model`: a valid answer is enough. `confidence`: the answer's `field` must be at least
    `threshold`. `judge`: the agent `judge_agent` (name@version, output with `approve: bool` and
    `reason: str`) reviews the answer."""

    kind: Literal["output_model", "confidence", "judge"] = "output_model"
    field: str = "confidence"
    threshold: float = 0.7
    judge_agent: str | None = None


class AgentSpec(BaseModel):
    name: str
    version: str
    instructions: str
    tier: str
    tiers: list[str] = Field(default_factory=list)  # an escalation ladder; empty means [tier]
    validator: ValidatorSpec | None = None
    review_role: str = "approver"  # who reviews the answer when the last rung fails
    tools: list[str] = Field(default_factory=list)
    max_turns: int = 8
    max_tokens: int = 1024
    step_budget_usd: str | None = None  # per agent step; None = only the task's budgets apply
    output_model: str
    output_schema: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def ladder(self) -> list[str]:
        return self.tiers or [self.tier]


class StepSpec(BaseModel):
    """One step of a workflow definition.

    agent: run `agent` (name@version). tool: run `tool` (name@version) with `args`, whose string
    values may be templates `{input.<key>}`, `{input.text}` or `{steps.<step>.<field>}`.
    checkpoint: a person reviews the previous step's output (`review`: output_review | plan_review)
    before the task goes on. planner: `agent` returns a plan (agents from `planner_agents`), which is
    validated against the catalog and the policies, optionally reviewed, then run.
    `when`: run the step only if this `steps.<step>.<field>` is true (else it is skipped).
    """

    name: str
    kind: Literal["agent", "tool", "checkpoint", "planner"] = "agent"
    agent: str = ""
    tool: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    review: Literal["output_review", "plan_review"] = "output_review"
    assignee_role: str = "approver"
    when: str | None = None
    planner_agents: list[str] = Field(default_factory=list)
    require_plan_review: bool = False


class PlanStep(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    agent: str  # name@version of a registered agent the planner may use
    instructions: str = Field(min_length=1, max_length=2000)
    tools: list[str] = Field(default_factory=list)  # tool names the step expects to use


class Plan(BaseModel):
    """What a planner agent returns."""

    rationale: str = Field(min_length=1, max_length=2000)
    steps: list[PlanStep] = Field(min_length=1, max_length=8)


class WorkflowSpec(BaseModel):
    name: str
    version: str
    description: str
    category: str = "general"
    risk_class: Literal["low", "medium", "high"] = "low"
    data_classification: Literal["public", "internal", "confidential"] = "internal"
    input_schema: dict[str, Any] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)
    steps: list[StepSpec]
    agents: dict[str, AgentSpec]
    tools: dict[str, ToolSpec]
    max_task_turns: int = 24  # model turns across all steps of one task
    default_budget_usd: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"
