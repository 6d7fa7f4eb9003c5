"""Tables. The schema is created and upgraded only by alembic migrations.

Money is stored as NUMERIC(18, 9) USD and summed as Decimal; ids are prefixed strings
(`tsk_…`, `mc_…`) so a stray id in a log says what it is. Every row that belongs to a tenant
carries `tenant_id`, and every query the API makes filters on it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Column, DateTime, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

MONEY = Numeric(18, 9)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


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


class Task(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "requester_id", "idempotency_key"),)
    id: str = Field(default_factory=lambda: new_id("tsk"), primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    requester_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    workflow_name: str = Field(max_length=120)
    workflow_version: str = Field(max_length=40)
    input_text: str = Field(sa_column=Column(Text, nullable=False))
    input_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    definition_json: str = Field(sa_column=Column(Text, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=200)
    status: str = Field(default="queued", index=True, max_length=20)
    outcome: str | None = Field(default=None, max_length=20)
    output_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    @property
    def workflow_id(self) -> str:
        return f"task-{self.id}"


class TaskStep(SQLModel, table=True):
    __tablename__ = "task_step"
    __table_args__ = (UniqueConstraint("task_id", "index"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=64)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=40)
    index: int
    name: str = Field(max_length=120)
    agent: str = Field(max_length=120)
    status: str = Field(max_length=20)
    output_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
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
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=30)
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
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
    status: str = Field(default="open", index=True, max_length=20)
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


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


# --- demo data acted on by the sample catalog's tools --------------------------------------------


class DemoOrder(SQLModel, table=True):
    __tablename__ = "demo_order"
    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    customer: str = Field(max_length=200)
    email: str = Field(max_length=254)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    refunded_amount: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(max_length=3)
    status: str = Field(max_length=20)


class RefundLedger(SQLModel, table=True):
    """The sample refund tool's side effect; one row per idempotency key, ever."""

    __tablename__ = "refund_ledger"
    id: str = Field(default_factory=lambda: new_id("rf"), primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    idempotency_key: str = Field(unique=True, max_length=200)
    task_id: str = Field(max_length=40)
    order_id: str = Field(max_length=40)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(max_length=3)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
