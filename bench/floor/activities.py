"""The floor's activities: one model call over plain httpx, and the sample catalog's two tools on
the same tables (same queries and idempotency as orchestrator/demo/catalog/tools.py)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from bench.floor.prompts import request_body
from bench.floor.types import ModelCallIn, ToolIn
from orchestrator.db import session_scope
from orchestrator.demo.catalog.models import IssueRefundArgs, LookupOrderArgs
from orchestrator.demo.catalog.tables import DemoOrder, RefundLedger


class FloorActivities:
    def __init__(self, engine: Engine, router_url: str, router_key: str) -> None:
        self.engine = engine
        self.http = httpx.AsyncClient(
            base_url=router_url.rstrip("/"),
            headers={"Authorization": f"Bearer {router_key}"},
            timeout=60,
            trust_env=False,
        )

    def all(self) -> list[Any]:
        return [self.model_call, self.lookup_order, self.issue_refund]

    @activity.defn(name="floor.model_call")
    async def model_call(self, inp: ModelCallIn) -> dict[str, Any]:
        """The assistant message (OpenAI shape) the router answered."""
        r = await self.http.post(
            "/v1/chat/completions",
            json=request_body(inp.messages, inp.tenant_id),
            headers={"x-request-id": inp.request_id},
        )
        r.raise_for_status()
        message = r.json()["choices"][0]["message"]
        out: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            out["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                for c in message["tool_calls"]
            ]  # fmt: skip
        return out

    @activity.defn(name="floor.lookup_order")
    async def lookup_order(self, inp: ToolIn) -> dict[str, Any]:
        try:
            args = LookupOrderArgs.model_validate_json(inp.arguments)
        except ValidationError as exc:
            return {"error": f"invalid arguments: {exc.error_count()} errors"}

        def run() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                order = session.exec(
                    select(DemoOrder).where(
                        DemoOrder.id == args.order_id, DemoOrder.tenant_id == inp.tenant_id
                    )
                ).first()
                if order is None:
                    return {"error": f"order {args.order_id} not found"}
                return _order_view(order)

        return await asyncio.to_thread(run)

    @activity.defn(name="floor.issue_refund")
    async def issue_refund(self, inp: ToolIn) -> dict[str, Any]:
        try:
            args = IssueRefundArgs.model_validate_json(inp.arguments)
        except ValidationError as exc:
            return {"error": f"invalid arguments: {exc.error_count()} errors"}

        def run() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                done = session.exec(
                    select(RefundLedger).where(RefundLedger.idempotency_key == inp.idempotency_key)
                ).first()
                if done is not None:
                    return _refund_view(done, replayed=True)
                order = session.exec(
                    select(DemoOrder)
                    .where(DemoOrder.id == args.order_id, DemoOrder.tenant_id == inp.tenant_id)
                    .with_for_update()
                ).first()
                if order is None:
                    return {"error": f"order {args.order_id} not found"}
                refundable = order.amount - order.refunded_amount
                if args.amount > refundable:
                    return {"error": f"amount {args.amount} exceeds the refundable {refundable}"}
                if args.currency != order.currency:
                    return {"error": f"order {order.id} is in {order.currency}, not {args.currency}"}
                entry = RefundLedger(
                    tenant_id=inp.tenant_id,
                    idempotency_key=inp.idempotency_key,
                    task_id=inp.task_id,
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
            return await asyncio.to_thread(run)
        except IntegrityError:  # another attempt with the same key committed first
            return await asyncio.to_thread(self._existing, inp.idempotency_key)

    def _existing(self, key: str) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            entry = session.exec(select(RefundLedger).where(RefundLedger.idempotency_key == key)).one()
            return _refund_view(entry, replayed=True)


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


def _refund_view(entry: RefundLedger, *, replayed: bool) -> dict[str, Any]:
    return {
        "refund_id": entry.id,
        "order_id": entry.order_id,
        "amount": str(entry.amount),
        "currency": entry.currency,
        "status": "issued",
        "replayed": replayed,
    }


def tool_content(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)
