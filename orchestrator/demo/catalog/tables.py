"""The tables the sample catalog's tools act on: demo orders and helpdesk tickets, the refund
ledger and the e-mail outbox. Demo data, seeded by :mod:`orchestrator.demo.seed`.

The schema is still created by the migrations in ``orchestrator/migrations/versions/``: they are
history (a database upgraded before these tables moved here must keep its data) and keep
creating these tables. Only the demo imports this module, so the control plane's models
(:mod:`orchestrator.models`) no longer know them; a tool reaches them through
``ToolContext.session()``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, DateTime, Numeric, Text
from sqlmodel import Field, SQLModel

from orchestrator.models import new_id, utcnow


def _ts() -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=False)


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


class DemoTicket(SQLModel, table=True):
    """A support ticket of the demo helpdesk, read and answered by the ticket triage sample."""

    __tablename__ = "demo_ticket"
    id: str = Field(primary_key=True, max_length=40)  # TCK-2001
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    customer: str = Field(max_length=200)
    email: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=20)  # open | pending | answered | closed
    intent: str | None = Field(default=None, max_length=20)
    reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The idempotency key of the last update: a retried update reports it instead of writing again.
    update_key: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class EmailOutbox(SQLModel, table=True):
    """The sample `send_email` tool's side effect: mail waiting to be sent (demo data)."""

    __tablename__ = "email_outbox"
    id: str = Field(default_factory=lambda: new_id("em"), primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    idempotency_key: str = Field(unique=True, max_length=200)
    task_id: str = Field(max_length=40)
    to: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
