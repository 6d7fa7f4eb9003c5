"""Messages of governance: tool authorization, checkpoints, budgets, kill switches and tool runs.

Every activity and update takes one model and returns one. Fields added later get defaults so
recorded histories stay replayable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.contracts.specs import (
    CheckpointKind,
    CheckpointStatus,
    DecisionKind,
    PolicyEffect,
)

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
