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
DecisionKind = Literal["approve", "reject"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "rejected"})
TASK_WORKFLOW_NAME = "frontdesk.task"
DECIDE_UPDATE_NAME = "checkpoint.decide"


# --- definitions (pinned into every task at submit time) ---------------------------------------


class ToolSpec(BaseModel):
    name: str
    version: str
    description: str
    side_effect: SideEffect
    args_schema: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class AgentSpec(BaseModel):
    name: str
    version: str
    instructions: str
    tier: str
    tools: list[str] = Field(default_factory=list)
    max_turns: int = 8
    max_tokens: int = 1024
    output_model: str
    output_schema: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class StepSpec(BaseModel):
    name: str
    kind: Literal["agent"] = "agent"
    agent: str


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
    status: Literal["running", "completed", "failed", "rejected", "limit_reached", "cancelled"]
    output: dict[str, Any] | None = None
    error: str | None = None


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


class ModelCallResult(BaseModel):
    message: ChatMessage
    model_served: str
    cost_usd: str  # decimal string, all attempts of this logical call
    attempts: int


# --- policy, checkpoints, tools ---------------------------------------------------------------------


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


class AuthorizeToolResult(BaseModel):
    tool_call_record_id: str
    effect: PolicyEffect
    policy_version: str
    rule: str
    reason: str
    args: dict[str, Any] | None = None  # parsed, validated arguments when they are valid
    args_digest: str


class CheckpointOpenInput(BaseModel):
    checkpoint_id: str
    task_id: str
    tenant_id: str
    requester_id: str
    step: str
    tool_call_record_id: str
    tool: str
    args: dict[str, Any]
    args_digest: str
    policy_version: str
    rule: str
    assignee_role: str = "approver"


class DecisionRequest(BaseModel):
    """Update input: the API has authenticated the decider and resolved their roles."""

    checkpoint_id: str
    decision: DecisionKind
    decider_id: str
    decider_roles: list[str]
    comment: str = ""


class DecisionResult(BaseModel):
    checkpoint_id: str
    decision: DecisionKind
    decider_id: str


class CheckpointDecisionRecord(BaseModel):
    checkpoint_id: str
    task_id: str
    tenant_id: str
    decision: DecisionKind
    decider_id: str
    comment: str = ""


class ToolRunInput(BaseModel):
    task_id: str
    tenant_id: str
    tool_call_record_id: str
    tool: str
    args: dict[str, Any]
    idempotency_key: str


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
