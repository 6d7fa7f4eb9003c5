"""The model-call activity: one logical call to the router, every HTTP attempt recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestrator import audit, telemetry
from orchestrator.budgets.service import BudgetService
from orchestrator.contracts import CALL_MODEL, ChatMessage, ModelCallInput, ModelCallResult, failures
from orchestrator.db import session_scope
from orchestrator.models import ModelCall
from workers.activities import heartbeating, implements
from workers.router_client import RouterClient, RouterError


class ModelActivities:
    def __init__(self, engine: Engine, router: RouterClient, budgets: BudgetService) -> None:
        self._engine = engine
        self._router = router
        self._budgets = budgets

    @implements(CALL_MODEL)
    async def call(self, call: ModelCallInput) -> ModelCallResult:
        async with heartbeating():  # a worker that dies mid-call is noticed in MODEL_OPTS' heartbeat timeout
            return await self._call(call)

    async def _call(self, call: ModelCallInput) -> ModelCallResult:
        activity_attempt = activity.info().attempt
        if activity_attempt > 1:
            # A retry after the router already answered (the worker died, or a write failed):
            # return that answer instead of asking again, so the call stays within its requests.
            answered = await asyncio.to_thread(self._answered, call.request_id)
            if answered is not None:
                await self._settle(call, Decimal(answered.cost_usd))
                return answered
        facts = call.facts
        with telemetry.task_span(
            facts.task_id, "model.call", tier=call.tier, step=facts.step, turn=call.turn
        ) as tp:
            try:
                outcome = await self._router.chat(call, traceparent=tp)
            except RouterError as err:
                await asyncio.to_thread(self._record, call, err.attempts, activity_attempt, str(err), None)
                await self._settle(call, sum((a.cost_usd for a in err.attempts), Decimal(0)))
                # The client already retried within its request budget; retrying the activity
                # would multiply it, so this fails the step with the router's reason.
                raise ApplicationError(str(err), type=failures.ROUTER_ERROR, non_retryable=True) from err
        answer = outcome.message.model_dump_json()
        await asyncio.to_thread(self._record, call, outcome.attempts, activity_attempt, None, answer)
        await self._settle(call, outcome.cost_usd)
        return ModelCallResult(
            message=outcome.message,
            model_served=outcome.model_served,
            cost_usd=str(outcome.cost_usd),
            attempts=len(outcome.attempts),
        )

    async def _settle(self, call: ModelCallInput, cost: Decimal) -> None:
        """Replace the call's worst-case reservation by what it really cost (idempotent)."""
        if call.reservation_id:
            await asyncio.to_thread(self._budgets.settle, call.reservation_id, cost)

    def _answered(self, request_id: str) -> ModelCallResult | None:
        """The recorded answer of this logical call, with the cost of every request it made."""
        with session_scope(self._engine) as session:
            rows = session.exec(select(ModelCall).where(ModelCall.request_id == request_id)).all()
        done = next((r for r in rows if r.ok and r.response_json), None)
        if done is None:
            return None
        return ModelCallResult(
            message=ChatMessage.model_validate_json(done.response_json or ""),
            model_served=done.model_served or done.tier,
            cost_usd=str(sum((Decimal(r.cost_usd) for r in rows), Decimal(0))),
            attempts=len(rows),
        )

    def _record(
        self,
        call: ModelCallInput,
        attempts: Sequence[Any],
        activity_attempt: int,
        error: str | None,
        answer: str | None,
    ) -> None:
        facts = call.facts
        total = Decimal(0)
        with session_scope(self._engine) as session:
            for a in attempts:
                total += a.cost_usd
                session.add(
                    ModelCall(
                        tenant_id=facts.tenant_id,
                        task_id=facts.task_id,
                        step=facts.step,
                        agent=facts.agent,
                        turn=call.turn,
                        request_id=call.request_id,
                        activity_attempt=activity_attempt,
                        attempt=a.attempt,
                        tier=call.tier,
                        model_served=a.model_served,
                        model_group=a.model_group,
                        fallbacks=a.fallbacks,
                        prompt_tokens=a.prompt_tokens,
                        completion_tokens=a.completion_tokens,
                        cached_tokens=a.cached_tokens,
                        cost_usd=a.cost_usd,
                        cost_estimated=a.cost_estimated,
                        latency_ms=a.latency_ms,
                        http_status=a.http_status,
                        ok=a.ok,
                        error=a.error,
                        response_json=answer if a.ok else None,
                    )
                )
            audit.record(
                session,
                tenant_id=facts.tenant_id,
                task_id=facts.task_id,
                actor=f"agent:{facts.agent}",
                action="model.call" if error is None else "model.call_failed",
                subject=call.request_id,
                reason=error or f"tier {call.tier}",
                data={"tier": call.tier, "attempts": len(attempts), "cost_usd": str(total)},
            )
