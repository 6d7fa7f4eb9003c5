"""Budget and kill-switch activities: before every model call, one round trip checks the switches
and reserves the call's worst case on every budget that applies."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio.exceptions import ApplicationError

from orchestrator import metrics, telemetry
from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import BudgetBreach, BudgetError, BudgetService, estimate_worst_case
from orchestrator.contracts import (
    CHECK_SWITCHES,
    RAISE_BUDGET,
    RELEASE_BUDGET,
    RESERVE_BUDGET,
    Ack,
    BudgetBreachInfo,
    RaiseBudgetInput,
    ReleaseInput,
    ReserveInput,
    ReserveResult,
    SwitchCheckInput,
    SwitchCheckResult,
    failures,
)
from orchestrator.models import utcnow
from orchestrator.services.switches import SwitchService
from workers.activities import implements
from workers.activities.governance import switch_info
from workers.activities.model_ledger import interrupt


def breach_info(breach: BudgetBreach) -> BudgetBreachInfo:
    return BudgetBreachInfo(
        scope=breach.scope,
        subject=breach.subject,
        counter_id=breach.counter_id,
        limit_usd=str(breach.limit_usd),
        spent_usd=str(breach.spent_usd),
        reserved_usd=str(breach.reserved_usd),
        requested_usd=str(breach.requested_usd),
        on_breach=breach.on_breach,
        message=breach.message,
    )


class BudgetActivities:
    def __init__(self, budgets: BudgetService, switches: SwitchService, prices: PriceTable) -> None:
        self._budgets = budgets
        self._switches = switches
        self._prices = prices

    @implements(RESERVE_BUDGET)
    async def reserve(self, inp: ReserveInput) -> ReserveResult:
        return await asyncio.to_thread(self.reserve_now, inp)

    def reserve_now(self, inp: ReserveInput) -> ReserveResult:
        """The reservation, in the caller's thread (model.turn runs it under its DatabaseWait)."""
        with telemetry.span("frontdesk.budget.reserve", {"frontdesk.task.id": inp.task_id}) as span:
            result = self._reserve_now(inp)
            if result.breach is not None:
                metrics.record_budget_breach(result.breach.scope)
            if span.is_recording():
                amount = float(result.amount_usd)
                span.set_attributes({"frontdesk.budget.ok": result.ok, "frontdesk.budget.amount_usd": amount})
                if result.breach is not None:
                    span.set_attribute("frontdesk.budget.breach_scope", result.breach.scope)
                if result.switch is not None:
                    span.set_attribute("frontdesk.switch.mode", result.switch.mode)
            return result

    def _reserve_now(self, inp: ReserveInput) -> ReserveResult:
        hit = self._switches.check(tenant_id=inp.tenant_id, agent=inp.agent)
        if hit is not None:
            return ReserveResult(ok=False, switch=switch_info(hit))
        amount = estimate_worst_case(self._prices, inp.tier, inp.prompt_chars, inp.max_tokens)
        outcome = self._budgets.reserve(
            reservation_id=inp.reservation_id,
            tenant_id=inp.tenant_id,
            task_id=inp.task_id,
            step=inp.step,
            agent=inp.agent,
            step_limit_usd=Decimal(inp.step_limit_usd) if inp.step_limit_usd else None,
            amount=amount,
            month=utcnow().strftime("%Y-%m"),
        )
        if isinstance(outcome, BudgetBreach):
            return ReserveResult(ok=False, amount_usd=str(amount), breach=breach_info(outcome))
        return ReserveResult(ok=True, amount_usd=str(amount))

    @implements(RAISE_BUDGET)
    async def raise_limit(self, inp: RaiseBudgetInput) -> Ack:
        try:
            await asyncio.to_thread(
                self._budgets.raise_limit, inp.counter_id, Decimal(inp.new_limit_usd), inp.actor_id
            )
        except BudgetError as exc:  # a refusal is final: retrying cannot make it valid
            raise ApplicationError(str(exc), type=failures.BUDGET_ERROR, non_retryable=True) from exc
        return Ack()

    @implements(RELEASE_BUDGET)
    async def release(self, inp: ReleaseInput) -> Ack:
        await asyncio.to_thread(self._release, inp.reservation_id)
        return Ack()

    def _release(self, reservation_id: str) -> None:
        """A model call that ended without settling (cancelled, or its worker gave up) gives its
        reservation back, unless requests of it may have reached a provider: then what the books
        hold for them (estimates of interrupted ones included) is spent, never silently dropped."""
        cost = interrupt(self._budgets.engine, reservation_id)
        if cost > 0:
            self._budgets.settle(reservation_id, cost)
        else:
            self._budgets.release(reservation_id)

    @implements(CHECK_SWITCHES)
    async def check_switches(self, inp: SwitchCheckInput) -> SwitchCheckResult:
        hit = await asyncio.to_thread(
            self._switches.check, tenant_id=inp.tenant_id, agent=inp.agent, tool=inp.tool
        )
        return SwitchCheckResult(switch=switch_info(hit) if hit is not None else None)
