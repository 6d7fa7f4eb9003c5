"""The model-call ledger: every router request is written down before it is sent.

A request that may reach a provider may cost money, and the worker can die between the answer
and its record. So `sending` inserts the request's `ModelCall` row first (status "sent", cost =
the call's estimate: its budget reservation, else the worst case), `ended` fills in the outcome
(status "done", the real cost), and `not_sent` deletes the row of a request that never got a
connection. A retried activity marks the rows its dead predecessor left "sent" as "interrupted":
their estimate stays in the task's cost and the tenant's spend until someone reconciles them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError

from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.rules import estimate_worst_case
from orchestrator.contracts import ModelCallInput, failures
from orchestrator.db import session_scope
from orchestrator.evidence import prompt_digest
from orchestrator.models import BudgetReservation, ModelCall, TaskStep
from workers.activities.outages import DATA_ERRORS, INFRA_ERRORS
from workers.router_client import AttemptRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

IN_FLIGHT = "sent"
DONE = "done"
INTERRUPTED = "interrupted"
SENT_NOTE = "sent; no answer recorded yet (cost estimated)"
INTERRUPTED_NOTE = "the worker stopped before the answer was recorded; cost estimated from the reservation"


class DatabaseWait:
    """Run the model-call activity's database work, waiting out a database outage *inside* the
    activity (like every other activity does across attempts, workers/activities/outages.py):
    the router's answer is kept in memory while its record is retried, so a request the router
    already answered is never sent again, and the activity's few attempts are not spent on it.

    Backoff 1 s doubling to 10 s, until `max_seconds` (FRONTDESK_INFRA_OUTAGE_MAX_SECONDS) since the
    outage began; then final (InfraUnavailable). Refused data is raised at once, as elsewhere.
    """

    def __init__(self, max_seconds: float, *, first: float = 1.0, cap: float = 10.0) -> None:
        self.max_seconds = max_seconds
        self._first, self._cap = first, cap

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        since: float | None = None
        delay = self._first
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except DATA_ERRORS:
                raise
            except INFRA_ERRORS as err:
                if self.max_seconds <= 0:
                    raise  # no waiting here: the activity's retries decide
                now = time.monotonic()
                since = now if since is None else since
                waited = now - since
                first_line = (str(getattr(err, "orig", None) or err).strip().splitlines() or [""])[0][:300]
                if waited >= self.max_seconds:
                    raise ApplicationError(
                        f"the database was unreachable for {waited:.0f} s (the limit is {self.max_seconds:.0f} s, "
                        f"FRONTDESK_INFRA_OUTAGE_MAX_SECONDS): {first_line}",
                        type=failures.INFRA_UNAVAILABLE,
                        non_retryable=True,
                    ) from err
                log.warning("model-call record waits for the database (%.0f s): %s", waited, first_line)
                await asyncio.sleep(min(delay, max(self.max_seconds - waited, 0.0)))
                delay = min(delay * 2, self._cap)


class ModelCallLedger:
    """`workers.router_client.CallLedger` over the database, for one activity attempt."""

    def __init__(
        self,
        engine: Engine,
        call: ModelCallInput,
        activity_attempt: int,
        estimate: Decimal,
        db: DatabaseWait | None = None,
    ) -> None:
        self._engine = engine
        self._call = call
        self._activity_attempt = activity_attempt
        self._estimate = estimate
        self._db = db or DatabaseWait(0)
        # A retried attempt may inherit its predecessor's "waiting" note: clear it when done.
        self._noted = activity_attempt > 1
        self._prompt_digest = prompt_digest(call.messages)  # once per attempt, not per request

    @classmethod
    def open(
        cls,
        engine: Engine,
        prices: PriceTable,
        call: ModelCallInput,
        activity_attempt: int,
        db: DatabaseWait | None = None,
        estimate: Decimal | None = None,
    ) -> ModelCallLedger:
        """The ledger of this attempt; rows an earlier attempt left in flight become interrupted.
        `estimate`: what the caller has just reserved for the call (spares the reads)."""
        if activity_attempt > 1:  # a first attempt has no predecessor that could have left any
            interrupt(engine, call.request_id)
        if estimate is not None:
            return cls(engine, call, activity_attempt, estimate, db)
        with session_scope(engine) as session:
            reserved = session.get(BudgetReservation, call.reservation_id) if call.reservation_id else None
        if reserved is not None:
            estimate = Decimal(reserved.amount_usd)
        else:
            chars = len(json.dumps([m.to_openai() for m in call.messages]))
            estimate = estimate_worst_case(prices, call.tier, chars, call.max_tokens)
        return cls(engine, call, activity_attempt, estimate, db)

    def _key(self, attempt: int) -> ColumnElement[bool]:
        return and_(
            col(ModelCall.request_id) == self._call.request_id,
            col(ModelCall.activity_attempt) == self._activity_attempt,
            col(ModelCall.attempt) == attempt,
        )

    async def sending(self, attempt: int) -> None:
        await self._db.run(self._sending, attempt)

    def _sending(self, attempt: int) -> None:
        c, facts = self._call, self._call.facts
        with session_scope(self._engine) as session:
            session.add(
                ModelCall(
                    tenant_id=facts.tenant_id,
                    task_id=facts.task_id,
                    step=facts.step,
                    agent=facts.agent,
                    turn=c.turn,
                    request_id=c.request_id,
                    activity_attempt=self._activity_attempt,
                    attempt=attempt,
                    tier=c.tier,
                    prompt_digest=self._prompt_digest,
                    cost_usd=self._estimate,
                    cost_estimated=True,
                    ok=False,
                    error=SENT_NOTE,
                    status=IN_FLIGHT,
                )
            )
            try:
                session.flush()  # insert first: a read before it would be wasted on all but retries
            except IntegrityError:
                session.rollback()
                if session.exec(select(ModelCall.id).where(self._key(attempt))).first() is None:
                    raise
                # written by a try whose commit went through although its answer was lost

    async def not_sent(self, attempt: int) -> None:
        await self._db.run(self._not_sent, attempt)

    def _not_sent(self, attempt: int) -> None:
        with session_scope(self._engine) as session:
            for row in session.exec(select(ModelCall).where(self._key(attempt))):
                session.delete(row)

    async def ended(self, record: AttemptRecord, answer: str | None = None) -> None:
        await self._db.run(self._ended, record, answer)

    def _ended(self, a: AttemptRecord, answer: str | None) -> None:
        with session_scope(self._engine) as session:
            session.connection().execute(  # Core: no loaded rows to synchronise
                update(ModelCall)
                .where(self._key(a.attempt))
                .values(
                    status=DONE,
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

    async def waiting(self, note: str | None) -> None:
        if note is None and not self._noted:
            return
        self._noted = note is not None
        await self._db.run(self._note, note)

    def _note(self, note: str | None) -> None:
        """The note goes on the step's row (a judge or sub-step without a row of its own: on the
        task's running step), where the API and the task page show it."""
        facts = self._call.facts
        with session_scope(self._engine) as session:
            rows = session.exec(
                select(TaskStep)
                .where(TaskStep.task_id == facts.task_id, TaskStep.tenant_id == facts.tenant_id)
                .order_by(col(TaskStep.index).desc())
            ).all()
            step = next((r for r in rows if r.name == facts.step), None) or next(
                (r for r in rows if r.status == "running"), None
            )
            if step is not None:
                step.note = note
                session.add(step)


def spent(engine: Engine, request_id: str) -> Decimal:
    """What the logical call `request_id` cost, as far as the books know (estimates included)."""
    with session_scope(engine) as session:
        costs = session.exec(select(col(ModelCall.cost_usd)).where(ModelCall.request_id == request_id)).all()
    return sum((Decimal(c) for c in costs), Decimal(0))


def interrupt(engine: Engine, request_id: str) -> Decimal:
    """Mark the requests of `request_id` still in flight as interrupted (their attempt is gone);
    return what the call cost, as far as the books know."""
    with session_scope(engine) as session:
        session.exec(
            update(ModelCall)
            .where(col(ModelCall.request_id) == request_id, col(ModelCall.status) == IN_FLIGHT)
            .values(status=INTERRUPTED, error=INTERRUPTED_NOTE)
        )
    return spent(engine, request_id)
