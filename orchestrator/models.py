"""Tables. The schema is created and upgraded only by alembic migrations.

Money is stored as NUMERIC(18, 9) USD and summed as Decimal; ids are prefixed strings
(`tsk_…`, `mc_…`) so a stray id in a log says what it is. Every row that belongs to a tenant
carries `tenant_id`, and every query the API makes filters on it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Column, DateTime, Index, Numeric, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

MONEY = Numeric(18, 9)


def table_of(model: type[SQLModel]) -> Table:
    """A model's table, for Core statements (SQLModel does not declare `__table__`)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """`at` in UTC. SQLite hands timestamps back without their zone; they were written in UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    domain: str = Field(default="", max_length=200)  # the tenant's own e-mail domain
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # Set by `frontdesk tenant revoke`: nobody signs in or calls the API in it any more.
    disabled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class User(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=40)
    email: str = Field(unique=True, index=True, max_length=254)
    name: str = Field(max_length=200)
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "user_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    role: str = Field(max_length=40)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: str = Field(default_factory=lambda: new_id("tok"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    token_hash: str = Field(unique=True, max_length=64)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class LoginFailure(SQLModel, table=True):
    """One failed sign-in, keyed by sha256(client address | e-mail): the login throttle counts
    these in the database, so every API process sees the same attempts."""

    __tablename__ = "login_failure"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(index=True, max_length=64)
    failed_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its sha256 is stored here, so a
    database leak yields no usable session. Logout sets `revoked_at`: the cookie is dead at once."""

    __tablename__ = "web_session"
    id: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie value
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)  # the tenant being worked in
    csrf_token: str = Field(max_length=64)
    user_agent: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Task(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("tenant_id", "requester_id", "idempotency_key"),
        # The task lists, newest first (migration 0009; services.tasks.list_visible).
        Index("ix_task_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_task_tenant_requester_created", "tenant_id", "requester_id", "created_at", "id"),
        Index("ix_task_tenant_status_created", "tenant_id", "status", "created_at", "id"),
    )
    id: str = Field(default_factory=lambda: new_id("tsk"), primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    requester_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    workflow_name: str = Field(max_length=120)
    workflow_version: str = Field(max_length=40)
    input_text: str = Field(sa_column=Column(Text, nullable=False))
    input_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    definition_json: str = Field(sa_column=Column(Text, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=200)
    budget_usd: Decimal | None = Field(default=None, sa_column=Column(MONEY, nullable=True))
    status: str = Field(default="queued", index=True, max_length=20)
    outcome: str | None = Field(default=None, max_length=20)
    output_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    @property
    def workflow_id(self) -> str:
        return workflow_id_of(self.id)


def workflow_id_of(task_id: str) -> str:
    """The id of the Temporal workflow that runs task `task_id`."""
    return f"task-{task_id}"


class TaskStep(SQLModel, table=True):
    __tablename__ = "task_step"
    __table_args__ = (UniqueConstraint("task_id", "index"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    index: int
    name: str = Field(max_length=120)
    agent: str = Field(max_length=120)
    kind: str = Field(default="agent", max_length=20)
    rung: int | None = None  # which rung of the agent's escalation ladder resolved the step
    tier: str | None = Field(default=None, max_length=120)
    status: str = Field(max_length=20)
    output_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Why a running step stands still, e.g. "waiting for the router since 08:31:02 UTC (attempt 4)".
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ModelCall(SQLModel, table=True):
    """One HTTP request to the router; a logical call retried three times is three rows."""

    __tablename__ = "model_call"
    __table_args__ = (UniqueConstraint("request_id", "activity_attempt", "attempt"),)
    id: str = Field(default_factory=lambda: new_id("mc"), primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    step: str = Field(max_length=120)
    agent: str = Field(max_length=120)
    turn: int
    request_id: str = Field(max_length=200)
    activity_attempt: int = 1
    attempt: int
    tier: str = Field(max_length=120)
    model_served: str | None = Field(default=None, max_length=200)
    model_group: str | None = Field(default=None, max_length=200)
    fallbacks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Field(default=Decimal(0), sa_column=Column(MONEY, nullable=False))
    cost_estimated: bool = False
    latency_ms: float = 0.0
    http_status: int | None = None
    ok: bool
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The answer of the successful attempt, so a retried activity returns it instead of asking again.
    response_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # sha256 of the canonical JSON of the messages sent (orchestrator.evidence); migration 0011.
    prompt_digest: str | None = Field(default=None, max_length=64)
    # "sent": written before the request left, no outcome yet (cost_usd holds the call's estimate);
    # "done": its outcome is recorded; "interrupted": the worker died before recording it, so the
    # estimate stands in the books until someone reconciles it with the router's own logs.
    status: str = Field(default="done", max_length=20, sa_column_kwargs={"server_default": "done"})
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ToolCall(SQLModel, table=True):
    __tablename__ = "tool_call"
    id: str = Field(primary_key=True, max_length=60)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    step: str = Field(max_length=120)
    turn: int
    agent: str = Field(max_length=120)
    tool: str = Field(max_length=120)
    tool_version: str | None = Field(default=None, max_length=40)
    model_tool_call_id: str = Field(max_length=200)
    args_json: str = Field(sa_column=Column(Text, nullable=False))
    args_digest: str = Field(max_length=64)
    effect: str = Field(max_length=20)
    policy_version: str = Field(max_length=64)
    rule: str = Field(sa_column=Column(Text, nullable=False))
    rule_id: str = Field(default="", max_length=120)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=30)
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # sha256 of the result's canonical JSON, as args_digest is of the arguments; migration 0011.
    result_digest: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Checkpoint(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=60)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    tool_call_id: str | None = Field(default=None, foreign_key="tool_call.id", max_length=60)
    requester_id: str = Field(max_length=40)
    step: str = Field(max_length=120)
    kind: str = Field(default="tool_approval", max_length=30)
    tool: str = Field(max_length=120)
    args_json: str = Field(sa_column=Column(Text, nullable=False))
    args_digest: str = Field(max_length=64)
    policy_version: str = Field(max_length=64)
    rule: str = Field(sa_column=Column(Text, nullable=False))
    assignee_role: str = Field(default="approver", max_length=40)
    extra_roles: str = Field(default="", max_length=200)  # comma-separated, added by escalation
    named_approvers: str = Field(
        default="", sa_column=Column(Text, nullable=False)
    )  # comma-separated user ids
    approvers_required: int = 1
    rule_id: str = Field(default="", max_length=120)
    sla_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    escalation_level: int = 0
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))  # why a person must look
    status: str = Field(default="open", index=True, max_length=20)
    edited_args_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    edit_diff_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class CheckpointDecision(SQLModel, table=True):
    """One person's decision on a checkpoint; a rule may need N distinct approvals."""

    __tablename__ = "checkpoint_decision"
    __table_args__ = (UniqueConstraint("checkpoint_id", "decider_id", "round"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    checkpoint_id: str = Field(foreign_key="checkpoint.id", index=True, max_length=60)
    round: int = 0  # an approval with edits starts a new round: earlier approvals no longer count
    decider_id: str = Field(max_length=40)
    decision: str = Field(
        max_length=30
    )  # approve | reject | approve_with_edits | request_changes | auto_reject
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    edited_args_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class CheckpointComment(SQLModel, table=True):
    __tablename__ = "checkpoint_comment"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    checkpoint_id: str = Field(foreign_key="checkpoint.id", index=True, max_length=60)
    author_id: str = Field(max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class BudgetCounter(SQLModel, table=True):
    """One budget: a limit, what is reserved for calls in flight and what was spent.

    `scope` is task | step | tenant_month | agent_month | tool_month; `period` keys it (a task id,
    `task/step`, or a month `2026-11`); `subject` names the agent or tool, else ''. A reservation
    is one conditional UPDATE (`spent + reserved + amount <= limit`), atomic on SQLite and
    PostgreSQL alike, so concurrent workers can never reserve past the limit together.
    """

    __tablename__ = "budget_counter"
    __table_args__ = (UniqueConstraint("tenant_id", "scope", "subject", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    scope: str = Field(max_length=20)
    subject: str = Field(default="", max_length=120)
    period: str = Field(max_length=120)
    limit_usd: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    reserved_usd: Decimal = Field(default=Decimal(0), sa_column=Column(MONEY, nullable=False))
    spent_usd: Decimal = Field(default=Decimal(0), sa_column=Column(MONEY, nullable=False))
    on_breach: str = Field(default="stop", max_length=10)  # pause (budget-raise checkpoint) | stop
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class BudgetReservation(SQLModel, table=True):
    __tablename__ = "budget_reservation"
    id: str = Field(primary_key=True, max_length=200)  # the logical call's request id: idempotent
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    counter_ids: str = Field(max_length=200)  # comma-separated BudgetCounter ids it holds
    amount_usd: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    settled_usd: Decimal | None = Field(default=None, sa_column=Column(MONEY, nullable=True))
    status: str = Field(default="reserved", max_length=20)  # reserved | settled | released
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class TenantBudget(SQLModel, table=True):
    """Per-tenant limits set by an admin (the defaults come from policies/budgets.yaml)."""

    __tablename__ = "tenant_budget"
    __table_args__ = (UniqueConstraint("tenant_id", "scope", "subject"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    scope: str = Field(max_length=20)  # tenant_month | agent_month | tool_month | task_max
    subject: str = Field(default="", max_length=120)
    limit_usd: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    on_breach: str = Field(default="stop", max_length=10)
    updated_by: str = Field(max_length=40)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class KillSwitch(SQLModel, table=True):
    """An emergency stop. scope: global | tenant | agent | tool; mode: pause | stop."""

    __tablename__ = "kill_switch"
    __table_args__ = (UniqueConstraint("scope", "tenant_id", "subject"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=10)
    tenant_id: str = Field(default="", max_length=64)  # '' for global
    subject: str = Field(default="", max_length=120)  # agent or tool name; '' for tenant/global
    mode: str = Field(default="stop", max_length=10)
    active: bool = False
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    flipped_by: str = Field(max_length=40)
    flipped_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class KillSwitchEvent(SQLModel, table=True):
    """Every flip, append-only (global switches belong to no tenant's audit chain)."""

    __tablename__ = "kill_switch_event"
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=10)
    tenant_id: str = Field(default="", max_length=64)
    subject: str = Field(default="", max_length=120)
    mode: str = Field(max_length=10)
    active: bool
    reason: str = Field(sa_column=Column(Text, nullable=False))
    flipped_by: str = Field(max_length=40)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class NotificationOutbox(SQLModel, table=True):
    """Notifications to send (checkpoint assigned, escalated, ...); a dispatcher delivers them."""

    __tablename__ = "notification_outbox"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    kind: str = Field(max_length=60)
    recipients: str = Field(sa_column=Column(Text, nullable=False))  # role:approver,user:usr_…
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    dedupe_key: str = Field(unique=True, max_length=200)
    status: str = Field(default="pending", index=True, max_length=20)  # pending | sent | failed
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained per tenant: `hash = sha256(prev_hash + canonical event)`."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("tenant_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    seq: int
    task_id: str | None = Field(default=None, index=True, max_length=40)
    actor: str = Field(max_length=120)
    action: str = Field(max_length=60)
    subject: str = Field(default="", max_length=200)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    data_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    __tablename__ = "audit_head"
    tenant_id: str = Field(foreign_key="tenant.id", primary_key=True, max_length=64)
    seq: int = 0
    last_hash: str = Field(default="0" * 64, max_length=64)
