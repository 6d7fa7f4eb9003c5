"""The model-call activity: one logical call to the router, every HTTP request recorded.

Router outages are waited out *inside* the activity (the router client backs off for up to
`router_outage_max_seconds` while `heartbeating()` keeps Temporal informed), not by Temporal
activity retries: the per-call request budget (`router_max_requests`) and the outage clock are
state of one logical call, which a retry would have to rebuild from the database; the workflow's
history stays one activity per call (no new commands, replay unchanged); and the step's
"waiting for the router" note is written by the one attempt that waits. MODEL_OPTS' start-to-close
timeout bounds the whole wait, and its 10 s heartbeat timeout still catches a dead worker.

Each request is written down before it is sent (`ModelCallLedger`), so spend survives a worker
that dies between the router's answer and its record. Database outages are waited out inside the
activity too (`DatabaseWait`, up to FRONTDESK_INFRA_OUTAGE_MAX_SECONDS): the router's answer is
kept while its record is retried, so the router is never asked twice for an answer it gave, and
MODEL_OPTS' few attempts are left for crashed workers.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestrator import audit, metrics, telemetry
from orchestrator.budgets.service import BudgetService
from orchestrator.contracts import CALL_MODEL, ChatMessage, ModelCallInput, ModelCallResult, failures
from orchestrator.db import session_scope
from orchestrator.models import ModelCall
from workers.activities import heartbeating, implements
from workers.activities.model_ledger import DONE, DatabaseWait, ModelCallLedger, spent
from workers.router_client import ChatOutcome, RouterClient, RouterError

_RUNG = re.compile(r"/r(\d+)$")


class ModelActivities:
    def __init__(
        self,
        engine: Engine,
        router: RouterClient,
        budgets: BudgetService,
        *,
        infra_outage_max_seconds: float = 900.0,
    ) -> None:
        self._engine = engine
        self._router = router
        self._budgets = budgets
        self._db = DatabaseWait(infra_outage_max_seconds)

    @implements(CALL_MODEL)
    async def call(self, call: ModelCallInput) -> ModelCallResult:
        async with heartbeating():  # a worker that dies mid-call is noticed in MODEL_OPTS' heartbeat timeout
            return await self._call(call)

    async def call_reserved(self, call: ModelCallInput, estimate: Decimal) -> ModelCallResult:
        """`call`, for a caller that has just reserved `estimate` for it (model.turn)."""
        async with heartbeating():
            return await self._call(call, estimate)

    async def _call(self, call: ModelCallInput, estimate: Decimal | None = None) -> ModelCallResult:
        activity_attempt = activity.info().attempt
        if activity_attempt > 1:
            # A retry after the router already answered (the worker died, or a write failed):
            # return that answer instead of asking again, so the call stays within its requests.
            answered = await self._db.run(self._answered, call.request_id)
            if answered is not None:
                await self._settle(call)
                return answered
        ledger = await self._db.run(
            ModelCallLedger.open,
            self._engine,
            self._router.prices,
            call,
            activity_attempt,
            self._db,
            estimate,
        )
        facts = call.facts
        started = time.monotonic()
        attrs = chat_attributes(call) if telemetry.enabled() else {}
        with telemetry.task_span(facts.task_id, f"chat {call.tier}", **attrs) as (span, tp):
            if telemetry.capture_content():
                telemetry.set_content(span, "gen_ai.input.messages", [m.model_dump(mode="json") for m in call.messages])
            try:
                outcome = await self._router.chat(call, traceparent=tp, ledger=ledger)
            except RouterError as err:
                metrics.record_chat(
                    tier=call.tier, model=None, seconds=time.monotonic() - started, input_tokens=0,
                    output_tokens=0, cost_usd=0.0, error=type(err).__name__,
                )  # fmt: skip
                span.set_attribute("error.type", type(err).__name__)
                await self._db.run(self._audit, call, len(err.attempts), str(err))
                # The client already waited out the outage and spent the call's request budget;
                # retrying the activity would multiply both, so this fails the step with the reason.
                raise ApplicationError(str(err), type=failures.ROUTER_ERROR, non_retryable=True) from err
            cost = await self._db.run(self._audit, call, len(outcome.attempts), None)
            served(span, call, outcome, cost, time.monotonic() - started)
        return ModelCallResult(
            message=outcome.message,
            model_served=outcome.model_served,
            cost_usd=str(cost),
            attempts=len(outcome.attempts),
        )

    async def _settle(self, call: ModelCallInput) -> None:
        """Replace the call's worst-case reservation by what the books say it cost (idempotent):
        every request of every activity attempt, interrupted ones at their estimate."""
        if call.reservation_id:
            cost = await self._db.run(spent, self._engine, call.request_id)
            with telemetry.span("frontdesk.budget.settle", {"frontdesk.cost_usd": float(cost)}):
                await self._db.run(self._budgets.settle, call.reservation_id, cost)

    def _answered(self, request_id: str) -> ModelCallResult | None:
        """The recorded answer of this logical call, with the cost of every request it made."""
        with session_scope(self._engine) as session:
            rows = session.exec(select(ModelCall).where(ModelCall.request_id == request_id)).all()
        done = next((r for r in rows if r.ok and r.response_json and r.status == DONE), None)
        if done is None:
            return None
        return ModelCallResult(
            message=ChatMessage.model_validate_json(done.response_json or ""),
            model_served=done.model_served or done.tier,
            cost_usd=str(sum((Decimal(r.cost_usd) for r in rows), Decimal(0))),
            attempts=len(rows),
        )

    def _audit(self, call: ModelCallInput, requests: int, error: str | None) -> Decimal:
        """Audit this attempt's requests and settle the call's reservation at what every attempt
        of it cost, in one transaction; return that cost."""
        facts = call.facts
        attempt = activity.info().attempt
        with session_scope(self._engine) as session:
            rows = session.exec(
                select(
                    col(ModelCall.cost_usd), col(ModelCall.activity_attempt), col(ModelCall.prompt_digest)
                ).where(ModelCall.request_id == call.request_id)
            ).all()
            total = sum((Decimal(c) for c, a, _ in rows if a == attempt), Decimal(0))
            digests = sorted({d for _, a, d in rows if a == attempt and d})  # the chain vouches for them
            audit.record(
                session,
                tenant_id=facts.tenant_id,
                task_id=facts.task_id,
                actor=f"agent:{facts.agent}",
                action="model.call" if error is None else "model.call_failed",
                subject=call.request_id,
                reason=error or f"tier {call.tier}",
                data={
                    "tier": call.tier,
                    "attempts": requests,
                    "cost_usd": str(total),
                    "prompt_digests": digests,
                },
            )
            cost = sum((Decimal(c) for c, _, _ in rows), Decimal(0))
            if call.reservation_id:
                with telemetry.span("frontdesk.budget.settle", {"frontdesk.cost_usd": float(cost)}):
                    self._budgets.settle(call.reservation_id, cost, session)
        return cost


def chat_attributes(call: ModelCallInput) -> dict[str, str | int]:
    """The `chat` span's attributes known before the call (GenAI conventions, docs/observability.md)."""
    facts = call.facts
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "_OTHER",  # the router picks the provider; Frontdesk asks for a tier
        "gen_ai.request.model": call.tier,
        "gen_ai.request.max_tokens": call.max_tokens,
        "gen_ai.agent.name": facts.agent,
        "gen_ai.conversation.id": facts.task_id,
        "frontdesk.task.id": facts.task_id,
        "frontdesk.step": facts.step,
        "frontdesk.turn": call.turn,
        "frontdesk.request_id": call.request_id,
        "frontdesk.rung": rung_of(call),
    }


def rung_of(call: ModelCallInput) -> int:
    """The escalation ladder's rung of an agent step's call: its request id is
    `<task>/<step>[/r<rung>]/<turn>` (workers/workflows/agents.py); 1 for any other call."""
    key = call.request_id.removeprefix(f"{call.facts.task_id}/").rpartition("/")[0]
    found = _RUNG.search(key)
    return int(found.group(1)) if found else 1


def served(span: Any, call: ModelCallInput, outcome: ChatOutcome, cost: Decimal, seconds: float) -> None:
    """What the router served: on the span and in the GenAI client metrics."""
    answered = outcome.attempts[-1] if outcome.attempts else None
    input_tokens = sum(a.prompt_tokens for a in outcome.attempts)
    output_tokens = sum(a.completion_tokens for a in outcome.attempts)
    metrics.record_chat(
        tier=call.tier,
        model=outcome.model_served,
        seconds=seconds,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=float(cost),
    )
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "gen_ai.response.model": outcome.model_served,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.usage.cache_read.input_tokens": sum(a.cached_tokens for a in outcome.attempts),
            "frontdesk.cost_usd": float(cost),
            "frontdesk.cost_estimated": any(a.cost_estimated for a in outcome.attempts),
            "frontdesk.router.attempts": len(outcome.attempts),
            "frontdesk.router.fallbacks": answered.fallbacks if answered else 0,
        }
    )
    if outcome.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [outcome.finish_reason])
    if answered is not None and answered.model_group:
        span.set_attribute("frontdesk.router.model_group", answered.model_group)
    if telemetry.capture_content():
        telemetry.set_content(span, "gen_ai.output.messages", [outcome.message.model_dump(mode="json")])
