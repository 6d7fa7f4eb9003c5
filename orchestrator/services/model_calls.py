"""Model calls as the books hold them, and reconciling the interrupted ones.

A router request whose worker died before its answer was recorded is `interrupted`: its estimate
(the call's budget reservation) stands in the task's cost (the sum of its `ModelCall` rows,
`services.tasks.cost_of`, `services.cost`) and in the tenant's spend (the budget counters the
call's reservation was settled on). An operator who has the router's logs sets the real figures:

    reconcile(call, cost, tokens)     status `reconciled`, cost and tokens from the router's logs
    reconcile(call, not_billed=True)  the request never reached a provider: cost 0

In one transaction: the row, the difference on every budget counter the call's settled
reservation moved (task, step, tenant month, agent/tool month), the reservation's settled amount,
and an audit event naming the operator. A reservation not settled yet (the task is still running
the call) needs no change: its settlement reads the rows, reconciled figure included.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, field_serializer
from sqlalchemy import func, literal, update
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.budgets.rules import BudgetError, to_usd
from orchestrator.errors import Conflict, NotFound, Unprocessable
from orchestrator.models import MONEY, BudgetCounter, BudgetReservation, ModelCall, as_utc, utcnow

INTERRUPTED = "interrupted"
RECONCILED = "reconciled"
STATUSES = ("sent", "done", INTERRUPTED, RECONCILED)
MAX_TOKENS = 100_000_000


class ModelCallRow(BaseModel):
    id: str
    tenant_id: str
    task_id: str
    step: str
    agent: str
    request_id: str
    activity_attempt: int
    attempt: int
    tier: str
    model_served: str | None
    status: str
    cost_usd: Decimal
    cost_estimated: bool
    prompt_tokens: int
    completion_tokens: int
    note: str | None
    created_at: datetime

    @field_serializer("cost_usd")
    def _cost(self, value: Decimal) -> str:
        return format(value.normalize(), "f") if value else "0"

    @classmethod
    def build(cls, m: ModelCall) -> ModelCallRow:
        return cls(
            id=m.id, tenant_id=m.tenant_id, task_id=m.task_id, step=m.step, agent=m.agent,
            request_id=m.request_id, activity_attempt=m.activity_attempt, attempt=m.attempt, tier=m.tier,
            model_served=m.model_served, status=m.status, cost_usd=Decimal(m.cost_usd),
            cost_estimated=m.cost_estimated, prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens, note=m.error, created_at=as_utc(m.created_at),
        )  # fmt: skip


class Reconciled(BaseModel):
    call: ModelCallRow
    previous_cost_usd: Decimal
    difference_usd: Decimal
    budgets_adjusted: int  # budget counters whose spend moved by the difference

    @field_serializer("previous_cost_usd", "difference_usd")
    def _money(self, value: Decimal) -> str:
        return format(value.normalize(), "f") if value else "0"


def list_calls(
    session: Session, *, tenant_id: str | None, status: str | None = None, task_id: str | None = None,
    limit: int = 200,
) -> list[ModelCallRow]:  # fmt: skip
    """Newest first; `tenant_id` None: every tenant (the operator's CLI only)."""
    if status is not None and status not in STATUSES:
        raise Unprocessable(f"status must be one of {', '.join(STATUSES)}, not {status!r}.")
    query = select(ModelCall)
    if tenant_id is not None:
        query = query.where(ModelCall.tenant_id == tenant_id)
    if status is not None:
        query = query.where(ModelCall.status == status)
    if task_id is not None:
        query = query.where(ModelCall.task_id == task_id)
    rows = session.exec(query.order_by(col(ModelCall.created_at).desc(), col(ModelCall.id)).limit(limit)).all()
    return [ModelCallRow.build(r) for r in rows]


def _tokens(value: int | None, what: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_TOKENS:
        raise Unprocessable(f"{what} must be a whole number from 0 to {MAX_TOKENS}, got {value}.")
    return value


def reconcile(
    session: Session,
    *,
    actor: str,
    call_id: str,
    tenant_id: str | None,
    cost_usd: Any = None,
    tokens_in: int | None = None,
    tokens_out: int | None = None,
    note: str = "",
    not_billed: bool = False,
) -> Reconciled:
    """Set an interrupted call's real figures (the caller commits). `tenant_id` scopes the lookup
    (another tenant's call is not found); None only for the operator's CLI."""
    query = select(ModelCall).where(ModelCall.id == call_id)
    if tenant_id is not None:
        query = query.where(ModelCall.tenant_id == tenant_id)
    row = session.exec(query).first()
    if row is None:
        raise NotFound(f"No model call {call_id!r}" + (f" in tenant {tenant_id!r}." if tenant_id else "."))
    if row.status != INTERRUPTED:
        raise Conflict(
            f"Model call {row.id} is {row.status}: only interrupted calls are reconciled "
            "(a call still 'sent' may be in flight; a 'done' one has the router's own figures)."
        )
    if not_billed:
        if cost_usd is not None and str(cost_usd).strip() not in ("0", "0.0", "0.00"):
            raise Unprocessable("Not billed means a cost of 0: give either a cost or not billed.")
        cost, tokens_in, tokens_out = Decimal(0), 0, 0
    else:
        if cost_usd is None:
            raise Unprocessable("Give the cost the router's logs show (USD), or mark the call not billed.")
        try:
            cost = to_usd(cost_usd, "the cost")
        except BudgetError as exc:
            raise Unprocessable(str(exc)) from exc
    tokens_in, tokens_out = _tokens(tokens_in, "tokens in"), _tokens(tokens_out, "tokens out")
    note = " ".join(note.split())[:500]
    previous = Decimal(row.cost_usd)
    difference = cost - previous
    what = "not billed (never reached a provider)" if not_billed else f"reconciled at {cost} USD"
    values: dict[str, Any] = {
        "status": RECONCILED,
        "cost_usd": cost,
        "cost_estimated": False,
        "error": f"{what} by {actor}" + (f": {note}" if note else ""),
    }
    if tokens_in is not None:
        values["prompt_tokens"] = tokens_in
    if tokens_out is not None:
        values["completion_tokens"] = tokens_out
    # Conditional: of two operators reconciling the same call at once, one wins.
    done = session.exec(
        update(ModelCall)
        .where(col(ModelCall.id) == row.id, col(ModelCall.status) == INTERRUPTED)
        .values(**values)
    )
    if done.rowcount != 1:
        raise Conflict(f"Model call {row.id} was reconciled meanwhile.")
    adjusted = _adjust_spend(session, row.request_id, difference)
    audit.record(
        session,
        tenant_id=row.tenant_id,
        task_id=row.task_id,
        actor=actor,
        action="model_call.reconciled",
        subject=row.id,
        reason=values["error"],
        data={
            "request_id": row.request_id,
            "previous_cost_usd": str(previous),
            "cost_usd": str(cost),
            "difference_usd": str(difference),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "not_billed": not_billed,
            "budgets_adjusted": adjusted,
        },
    )
    session.flush()
    session.refresh(row)
    return Reconciled(
        call=ModelCallRow.build(row), previous_cost_usd=previous, difference_usd=difference, budgets_adjusted=adjusted
    )


def _adjust_spend(session: Session, request_id: str, difference: Decimal) -> int:
    """Move the settled spend of the call's reservation by `difference`; return how many budget
    counters moved (0: not settled yet, and its settlement will read the reconciled row)."""
    if difference == 0:
        return 0
    moved = session.exec(
        update(BudgetReservation)
        .where(col(BudgetReservation.id) == request_id, col(BudgetReservation.status) == "settled")
        .values(settled_usd=func.round(col(BudgetReservation.settled_usd) + literal(difference, MONEY), 9))
    )
    if moved.rowcount != 1:
        return 0
    reservation = session.get_one(BudgetReservation, request_id)
    ids = sorted(int(i) for i in reservation.counter_ids.split(",") if i)
    for cid in ids:  # ascending ids, as the budget service does: no deadlocks on PostgreSQL
        session.exec(
            update(BudgetCounter)
            .where(col(BudgetCounter.id) == cid)
            .values(
                spent_usd=func.round(col(BudgetCounter.spent_usd) + literal(difference, MONEY), 9),
                updated_at=utcnow(),
            )
        )
    return len(ids)
