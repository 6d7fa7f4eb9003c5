"""Messages of the task workflow: its input and result, chat turns, records and model calls.

Every workflow, activity and update takes one model and returns one. Fields added later get
defaults so recorded histories stay replayable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.contracts.specs import AgentSpec, Plan, TaskOutcome, TaskStatus, ToolSpec, WorkflowSpec

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
    # The path the workflow takes: every API since issue 12 starts tasks on the combined round
    # trips (orchestrator/contracts/round_trips.py); tasks started before carry no such field and
    # replay the chain of single activities they recorded. A field, not `workflow.patched`: a
    # patch costs every task two history events (its marker and a search-attribute upsert), and
    # the API that starts the task knows what it asks for.
    round_trips: bool = False


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
