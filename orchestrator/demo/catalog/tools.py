"""Implementations of the sample tools. They act on real local tables seeded with demo data.

Each runs as its own Temporal activity and is idempotent by the key the workflow gives it:
`issue_refund` writes its ledger row under a unique idempotency key in the same transaction as
the order update, so a retried activity (a worker killed half way) never refunds twice.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from orchestrator.catalog.context import ToolContext
from orchestrator.catalog.registry import ToolFailure
from orchestrator.demo.catalog.models import IssueRefundArgs, LookupOrderArgs, SendEmailArgs
from orchestrator.demo.catalog.settings import DemoCatalogSettings
from orchestrator.demo.catalog.tables import DemoOrder, EmailOutbox, RefundLedger

Context = ToolContext[DemoCatalogSettings]


def _order_view(order: DemoOrder) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "customer": order.customer,
        "amount": str(order.amount),
        "currency": order.currency,
        "status": order.status,
        "refunded_amount": str(order.refunded_amount),
        "refundable_amount": str(order.amount - order.refunded_amount),
    }


async def lookup_order(args: LookupOrderArgs, ctx: Context) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with ctx.session() as session:
            order = session.exec(
                select(DemoOrder).where(DemoOrder.id == args.order_id, DemoOrder.tenant_id == ctx.tenant_id)
            ).first()
            if order is None:
                raise ToolFailure(f"order {args.order_id} not found")
            return _order_view(order)

    return await asyncio.to_thread(run)


async def issue_refund(args: IssueRefundArgs, ctx: Context) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with ctx.session() as session:
            done = session.exec(
                select(RefundLedger).where(RefundLedger.idempotency_key == ctx.idempotency_key)
            ).first()
            if done is not None:
                return _refund_view(done, replayed=True)
            order = session.exec(
                select(DemoOrder)
                .where(DemoOrder.id == args.order_id, DemoOrder.tenant_id == ctx.tenant_id)
                .with_for_update()
            ).first()
            if order is None:
                raise ToolFailure(f"order {args.order_id} not found")
            refundable = order.amount - order.refunded_amount
            if args.amount > refundable:
                raise ToolFailure(
                    f"amount {args.amount} exceeds the refundable {refundable} {order.currency}"
                )
            if args.currency != order.currency:
                raise ToolFailure(f"order {order.id} is in {order.currency}, not {args.currency}")
            entry = RefundLedger(
                tenant_id=ctx.tenant_id,
                idempotency_key=ctx.idempotency_key,
                task_id=ctx.task_id,
                order_id=order.id,
                amount=Decimal(args.amount),
                currency=args.currency,
                reason=args.reason,
            )
            order.refunded_amount = order.refunded_amount + Decimal(args.amount)
            order.status = "refunded" if order.refunded_amount >= order.amount else "partially_refunded"
            session.add(entry)
            session.add(order)
            session.flush()
            return _refund_view(entry, replayed=False)

    try:
        result = await asyncio.to_thread(run)
    except IntegrityError:
        # Another attempt with the same key committed first: report its refund.
        result = await asyncio.to_thread(_existing, ctx)
    if ctx.settings.tool_delay_seconds:
        # Demo/test knob: hold the activity open *after* the side effect committed, which is
        # exactly where a crash would tempt a naive implementation to refund twice.
        await _sleep_with_heartbeat(ctx, ctx.settings.tool_delay_seconds)
    return result


def _existing(ctx: Context) -> dict[str, Any]:
    with ctx.session() as session:
        entry = session.exec(
            select(RefundLedger).where(RefundLedger.idempotency_key == ctx.idempotency_key)
        ).one()
        return _refund_view(entry, replayed=True)


def _refund_view(entry: RefundLedger, *, replayed: bool) -> dict[str, Any]:
    return {
        "refund_id": entry.id,
        "order_id": entry.order_id,
        "amount": str(entry.amount),
        "currency": entry.currency,
        "status": "issued",
        "replayed": replayed,
    }


async def _sleep_with_heartbeat(ctx: Context, seconds: float) -> None:
    waited = 0.0
    while waited < seconds:
        ctx.heartbeat()
        step = min(0.5, seconds - waited)
        await asyncio.sleep(step)
        waited += step


async def send_email(args: SendEmailArgs, ctx: Context) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with ctx.session() as session:
            queued = session.exec(
                select(EmailOutbox).where(EmailOutbox.idempotency_key == ctx.idempotency_key)
            ).first()
            if queued is None:
                queued = EmailOutbox(
                    tenant_id=ctx.tenant_id,
                    idempotency_key=ctx.idempotency_key,
                    task_id=ctx.task_id,
                    to=args.to,
                    subject=args.subject,
                    body=args.body,
                )
                session.add(queued)
                session.flush()
            return {"email_id": queued.id, "to": queued.to, "status": "queued"}

    return await asyncio.to_thread(run)
