"""Pure domain models shared by the API, the workflows and the activities.

Workflow code imports only this module and other pure modules: no I/O, no clocks, no
environment. Every workflow, activity and update takes one model here and returns one.
Fields added later must get defaults so recorded histories stay replayable.
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
TASK_WORKFLOW_NAME = "frontdesk.task"
DECIDE_UPDATE_NAME = "checkpoint.decide"
REASSIGN_UPDATE_NAME = "checkpoint.reassign"
SWITCHES_CHANGED_SIGNAL = "switches.changed"


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


# --- chat messages (OpenAI wire format, typed) ---------------------------------------------------


class ToolCallRequest(BaseModel):
    id: str
    name: str
    arguments: str  # JSON text exactly as the model produced it


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    tool_call_id: str | None = None

    def to_openai(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id:
            msg["tool_call_id"] = self.tool_call_id
        return msg


# --- workflow input / result -----------------------------------------------------------------------


class TaskWorkflowInput(BaseModel):
    task_id: str
    tenant_id: str
    requester_id: str
    definition: WorkflowSpec
    input_text: str
    input_data: dict[str, Any] = Field(default_factory=dict)


class TaskWorkflowResult(BaseModel):
    status: TaskStatus
    outcome: TaskOutcome | None = None
    output: dict[str, Any] | None = None
    error: str | None = None


class TaskStatusUpdate(BaseModel):
    task_id: str
    tenant_id: str
    status: TaskStatus
    outcome: TaskOutcome | None = None
    output: dict[str, Any] | None = None
    error: str | None = None


class StepRecord(BaseModel):
    task_id: str
    tenant_id: str
    index: int
    name: str
    agent: str
    status: Literal["running", "completed", "failed", "rejected", "limit_reached", "cancelled", "skipped"]
    output: dict[str, Any] | None = None
    error: str | None = None
    kind: str = "agent"
    rung: int | None = None
    tier: str | None = None


class ValidatePlanInput(BaseModel):
    tenant_id: str
    plan: dict[str, Any]
    planner_agents: list[str]
    agents: dict[str, AgentSpec]  # the pinned specs of the agents the planner may use


class ValidatePlanResult(BaseModel):
    ok: bool
    problems: list[str] = Field(default_factory=list)
    plan: Plan | None = None


class Ack(BaseModel):
    ok: bool = True


# --- model calls -------------------------------------------------------------------------------------


class RoutingFacts(BaseModel):
    tenant_id: str
    requester_id: str
    task_id: str
    step: str
    agent: str
    category: str
    risk_class: str
    data_classification: str


class ModelCallInput(BaseModel):
    facts: RoutingFacts
    turn: int
    request_id: str  # stable across activity retries
    tier: str
    messages: list[ChatMessage]
    tools: list[ToolSpec] = Field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    max_tokens: int = 1024
    reservation_id: str | None = None  # settled with the real cost by the activity


class ModelCallResult(BaseModel):
    message: ChatMessage
    model_served: str
    cost_usd: str  # decimal string, all attempts of this logical call
    attempts: int


# --- policy, checkpoints, tools ---------------------------------------------------------------------


class EscalationStep(BaseModel):
    after_seconds: int
    add_roles: list[str] = Field(default_factory=list)
    action: Literal["escalate", "auto_reject"] = "escalate"


class ApprovalSpec(BaseModel):
    """Who must decide a checkpoint and by when (from policies/approvals.yaml)."""

    rule_id: str = ""
    assignee_role: str = "approver"
    approvers_required: int = 1
    named_approvers: list[str] = Field(default_factory=list)
    sla: list[EscalationStep] = Field(default_factory=list)


class SwitchInfo(BaseModel):
    scope: str
    subject: str
    mode: Literal["pause", "stop"]
    message: str


class AuthorizeToolInput(BaseModel):
    record_id: str  # deterministic per task/step/turn/call: the activity is idempotent on it
    tool_version: str | None  # None when the agent may not ask for this tool at all
    task_id: str
    tenant_id: str
    requester_id: str
    step: str
    turn: int
    agent: str
    tool: str
    arguments: str
    tool_call_id: str
    data_classification: str = "internal"
    risk_class: str = "low"
    category: str = "general"


class AuthorizeToolResult(BaseModel):
    tool_call_record_id: str
    effect: PolicyEffect
    policy_version: str
    rule: str
    reason: str
    args: dict[str, Any] | None = None  # parsed, validated arguments when they are valid
    args_digest: str
    rule_id: str = ""
    approval: ApprovalSpec | None = None
    paused: SwitchInfo | None = None  # a pause switch holds this call: wait, then ask again


class CheckpointOpenInput(BaseModel):
    checkpoint_id: str
    kind: CheckpointKind = "tool_approval"
    task_id: str
    tenant_id: str
    requester_id: str
    step: str
    tool_call_record_id: str | None
    tool: str  # the tool, or the budget / plan / output the checkpoint is about
    args: dict[str, Any]
    args_digest: str
    policy_version: str
    rule: str
    reason: str = ""
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)


class DecisionRequest(BaseModel):
    """Update input: the API has authenticated the decider and resolved their roles."""

    checkpoint_id: str
    decision: DecisionKind
    decider_id: str
    decider_roles: list[str]
    comment: str = ""
    edited_args: dict[str, Any] | None = None


class DecisionResult(BaseModel):
    checkpoint_id: str
    decision: DecisionKind
    decider_id: str
    status: CheckpointStatus = "open"
    approvals: int = 0
    approvals_required: int = 1


class ReassignRequest(BaseModel):
    checkpoint_id: str
    actor_id: str
    actor_roles: list[str]
    assignee_role: str | None = None
    named_approvers: list[str] | None = None
    comment: str = ""


class CheckpointState(BaseModel):
    """What the workflow knows of one open checkpoint (kept in workflow memory)."""

    checkpoint_id: str
    kind: CheckpointKind
    tool: str
    tool_version: str | None = None
    agent: str = ""
    args: dict[str, Any]
    approval: ApprovalSpec
    extra_roles: list[str] = Field(default_factory=list)
    round: int = 0
    approvals: list[str] = Field(default_factory=list)  # decider ids in the current round
    status: CheckpointStatus = "open"
    comment: str = ""
    decided_by: str = ""


class CheckpointDecisionRecord(BaseModel):
    checkpoint_id: str
    task_id: str
    tenant_id: str
    decision: DecisionKind | Literal["auto_reject"]
    decider_id: str
    comment: str = ""
    round: int = 0
    edited_args: dict[str, Any] | None = None
    edit_diff: dict[str, Any] | None = None
    args_digest: str | None = None
    resolved_status: CheckpointStatus = "open"  # open while more approvals are needed
    approvers_required: int | None = None  # raised when edits need a stricter approval


class ReauthorizeInput(BaseModel):
    """An approver's edited arguments: validated against the tool's model and authorized again."""

    task_id: str
    tenant_id: str
    agent: str
    tool: str
    tool_version: str
    original_args: dict[str, Any]
    edited_args: dict[str, Any]
    data_classification: str = "internal"
    risk_class: str = "low"
    category: str = "general"


class ReauthorizeResult(BaseModel):
    ok: bool
    reason: str
    args: dict[str, Any] | None = None
    args_digest: str = ""
    diff: dict[str, Any] = Field(default_factory=dict)
    effect: PolicyEffect = "deny"
    rule_id: str = ""
    approval: ApprovalSpec | None = None  # the approval the edited arguments need, if any


class EscalateInput(BaseModel):
    checkpoint_id: str
    task_id: str
    tenant_id: str
    level: int
    add_roles: list[str]
    reason: str


class ReassignRecord(BaseModel):
    checkpoint_id: str
    task_id: str
    tenant_id: str
    actor_id: str
    assignee_role: str
    named_approvers: list[str]
    comment: str = ""


# --- budgets and kill switches ------------------------------------------------------------------------


class BudgetBreachInfo(BaseModel):
    scope: str
    subject: str = ""
    counter_id: int
    limit_usd: str
    spent_usd: str
    reserved_usd: str
    requested_usd: str
    on_breach: Literal["pause", "stop"]
    message: str


class ReserveInput(BaseModel):
    reservation_id: str
    tenant_id: str
    task_id: str
    step: str
    agent: str
    tier: str
    prompt_chars: int
    max_tokens: int
    step_limit_usd: str | None = None


class ReserveResult(BaseModel):
    ok: bool
    amount_usd: str = "0"
    breach: BudgetBreachInfo | None = None
    switch: SwitchInfo | None = None


class ReleaseInput(BaseModel):
    reservation_id: str


class RaiseBudgetInput(BaseModel):
    tenant_id: str
    task_id: str
    counter_id: int
    new_limit_usd: str
    actor_id: str


class SwitchCheckInput(BaseModel):
    tenant_id: str
    agent: str | None = None
    tool: str | None = None


class SwitchCheckResult(BaseModel):
    switch: SwitchInfo | None = None


class ToolRunInput(BaseModel):
    task_id: str
    tenant_id: str
    tool_call_record_id: str
    tool: str
    args: dict[str, Any]
    idempotency_key: str
    step: str = ""


class ToolRunResult(BaseModel):
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ValidateOutputInput(BaseModel):
    output_model: str
    text: str


class ValidateOutputResult(BaseModel):
    ok: bool
    data: dict[str, Any] | None = None
    errors: str | None = None
