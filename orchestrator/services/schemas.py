"""Request and response models of the REST API (the OpenAPI schema at /docs comes from these)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer

from orchestrator.models import Checkpoint, ModelCall, TaskStep, ToolCall, as_utc
from orchestrator.services.limits import MAX_JSON_DEPTH, NUL_MESSAGE, has_nul, json_depth


def _storable(value: Any) -> Any:
    # The HTTP edges refuse NUL in what they read; this also covers forms the pages build.
    if has_nul(value):
        raise ValueError(NUL_MESSAGE)
    return value


def _not_too_deep(value: dict[str, Any]) -> dict[str, Any]:
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(
            f"nested more than {MAX_JSON_DEPTH} levels deep; flatten the structure "
            "(or send a long document as text, or attach it)"
        )
    return value


# A JSON object whose nesting is bounded: deeper values cannot be stored, shown or handed on.
JsonObject = Annotated[dict[str, Any], AfterValidator(_not_too_deep), AfterValidator(_storable)]
# Text that can be stored (PostgreSQL refuses NUL in text).
StorableText = Annotated[str, AfterValidator(_storable)]
DEPTH_NOTE = f" At most {MAX_JSON_DEPTH} levels deep; text may not contain NUL (U+0000)."


def _utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else as_utc(dt)


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflow: str | None = Field(
        None,
        min_length=1,
        max_length=160,
        description="Workflow name, optionally `name@version`; leave it out to let intake pick one.",
    )
    input: StorableText = Field(min_length=1, max_length=32000, description="The request in plain words.")
    data: JsonObject = Field(default_factory=dict, description="Optional structured input." + DEPTH_NOTE)
    budget_usd: Decimal | None = Field(
        None,
        gt=0,
        max_digits=12,
        decimal_places=6,
        description="This task's budget; within the tenant's limit.",
    )


class CostSummary(BaseModel):
    total_usd: Decimal
    estimated: bool
    model_calls: int

    @field_serializer("total_usd")
    def _money(self, v: Decimal) -> str:
        return format(v.normalize(), "f") if v else "0"


class TaskListRow(Protocol):
    """What a task list row needs of a task (services.tasks.LIST_COLUMNS reads only these)."""

    @property
    def id(self) -> str: ...
    @property
    def workflow_name(self) -> str: ...
    @property
    def workflow_version(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def requester_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...


class TaskPublic(BaseModel):
    id: str
    workflow: str
    status: str
    outcome: str | None
    requester_id: str
    created_at: datetime
    ended_at: datetime | None
    cost: CostSummary

    @classmethod
    def build(cls, task: TaskListRow, cost: CostSummary) -> TaskPublic:
        return cls(
            id=task.id,
            workflow=f"{task.workflow_name}@{task.workflow_version}",
            status=task.status,
            outcome=task.outcome,
            requester_id=task.requester_id,
            created_at=_utc(task.created_at),
            ended_at=_utc(task.ended_at),
            cost=cost,
        )


class StepPublic(BaseModel):
    index: int
    name: str
    agent: str
    kind: str
    rung: int | None
    tier: str | None
    status: str
    output: dict[str, Any] | None
    error: str | None
    note: str | None = Field(
        None, description="why a running step stands still, e.g. 'waiting for the router since …'"
    )
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @classmethod
    def build(cls, s: TaskStep) -> StepPublic:
        return cls(
            started_at=_utc(s.started_at),
            ended_at=_utc(s.ended_at),
            index=s.index,
            name=s.name,
            agent=s.agent,
            kind=s.kind,
            rung=s.rung,
            tier=s.tier,
            status=s.status,
            output=json.loads(s.output_json) if s.output_json else None,
            error=s.error,
            note=s.note if s.status == "running" else None,
        )


class ModelCallPublic(BaseModel):
    id: str
    step: str
    agent: str
    turn: int
    attempt: int
    activity_attempt: int
    tier: str
    model_served: str | None
    model_group: str | None
    fallbacks: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: Decimal
    cost_estimated: bool
    latency_ms: float
    http_status: int | None
    ok: bool
    error: str | None
    status: str = Field(
        "done",
        description="sent: in flight, cost estimated; done; interrupted: the worker stopped before "
        "the answer was recorded, cost estimated from the reservation; reconciled: an operator set "
        "the real figures from the router's logs",
    )
    created_at: datetime

    @field_serializer("cost_usd")
    def _money(self, v: Decimal) -> str:
        return format(v.normalize(), "f") if v else "0"

    @classmethod
    def build(cls, m: ModelCall) -> ModelCallPublic:
        data = m.model_dump()
        data["created_at"] = _utc(m.created_at)
        return cls.model_validate(data)


class ToolCallPublic(BaseModel):
    id: str
    step: str
    turn: int
    agent: str
    tool: str
    args: Any
    args_digest: str
    effect: str
    policy_version: str
    rule: str
    reason: str
    status: str
    result: Any
    error: str | None
    rule_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = Field(None, description="the last change: its result, once it has one")

    @classmethod
    def build(cls, t: ToolCall) -> ToolCallPublic:
        return cls(
            rule_id=t.rule_id,
            created_at=_utc(t.created_at),
            updated_at=_utc(t.updated_at),
            id=t.id,
            step=t.step,
            turn=t.turn,
            agent=t.agent,
            tool=t.tool,
            args=json.loads(t.args_json),
            args_digest=t.args_digest,
            effect=t.effect,
            policy_version=t.policy_version,
            rule=t.rule,
            reason=t.reason,
            status=t.status,
            result=json.loads(t.result_json) if t.result_json else None,
            error=t.error,
        )


class DecisionPublic(BaseModel):
    decider_id: str
    decision: str
    round: int
    comment: str | None
    edited_args: dict[str, Any] | None
    created_at: datetime


class CommentPublic(BaseModel):
    author_id: str
    body: str
    created_at: datetime


class CheckpointPublic(BaseModel):
    id: str
    task_id: str
    kind: str
    step: str
    tool: str
    args: dict[str, Any]
    args_digest: str
    policy_version: str
    rule: str
    rule_id: str
    reason: str
    assignee_role: str
    extra_roles: list[str]
    named_approvers: list[str]
    approvers_required: int
    escalation_level: int
    due_at: datetime | None
    requester_id: str
    status: str
    edited_args: dict[str, Any] | None
    edit_diff: dict[str, Any] | None
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    created_at: datetime

    @classmethod
    def build(cls, c: Checkpoint) -> CheckpointPublic:
        data = c.model_dump(exclude={"args_json", "tenant_id", "tool_call_id", "sla_json"})
        data.update(
            args=json.loads(c.args_json),
            created_at=_utc(c.created_at),
            decided_at=_utc(c.decided_at),
            due_at=_utc(c.due_at),
            extra_roles=[r for r in c.extra_roles.split(",") if r],
            named_approvers=[u for u in c.named_approvers.split(",") if u],
            edited_args=json.loads(c.edited_args_json) if c.edited_args_json else None,
            edit_diff=json.loads(c.edit_diff_json) if c.edit_diff_json else None,
        )
        return cls.model_validate(data)


class CheckpointDetail(CheckpointPublic):
    sla: list[dict[str, Any]]
    decisions: list[DecisionPublic]
    comments: list[CommentPublic]


class TaskDetail(TaskPublic):
    input: str
    data: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    steps: list[StepPublic]
    model_calls: list[ModelCallPublic]
    tool_calls: list[ToolCallPublic]
    checkpoints: list[CheckpointPublic]


class TaskList(BaseModel):
    items: list[TaskPublic]
    total: int


class MyDecision(BaseModel):
    checkpoint_id: str
    task_id: str
    kind: str
    tool: str
    args: dict[str, Any]
    decision: str
    comment: str | None
    edited_args: dict[str, Any] | None
    checkpoint_status: str
    created_at: datetime | None


class MyDecisionList(BaseModel):
    items: list[MyDecision]


class CheckpointList(BaseModel):
    items: list[CheckpointPublic]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject", "approve_with_edits", "request_changes"]
    comment: str = Field("", max_length=2000)
    edited_args: JsonObject | None = Field(
        None,
        description="approve_with_edits only: the arguments to run instead (validated and re-authorized)."
        + DEPTH_NOTE,
    )


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee_role: Literal["approver", "admin"] | None = None
    named_approvers: list[str] | None = Field(
        None, max_length=20, description="user ids or e-mails in this tenant"
    )
    comment: str = Field("", max_length=2000)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=4000)


class WorkflowPublic(BaseModel):
    ref: str
    name: str
    version: str
    description: str
    category: str
    risk_class: str
    data_classification: str
    steps: list[dict[str, Any]]
    agents: list[str]
    tools: list[dict[str, Any]]
    examples: list[str]


class Me(BaseModel):
    user_id: str
    email: str
    name: str
    tenant_id: str
    roles: list[str]
