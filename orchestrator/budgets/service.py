"""Budgets: reserve the worst case before a model call, settle the real cost after it.

A budget is one `BudgetCounter` row (limit, reserved, spent). The budgets that apply to a call are
its task, its agent step (when the agent sets a per-step cap), the tenant's month and, when
configured, its agent's and tool's month. `reserve` adds the worst case to every one of them in one
transaction, each with one conditional UPDATE (`spent + reserved + amount <= limit`); if any refuses,
nothing is reserved and the caller gets a `BudgetBreach` naming the budget, its limit and its spend.
Concurrent reservations therefore never pass a limit together: the only overshoot is a call whose
real cost is above its reserved worst case, or a tool's declared cost (`charge`, never refused).

Counters are updated in ascending id order (no deadlocks on PostgreSQL). SQLite stores NUMERIC as
floating point, so every update rounds to the columns' 1e-9 scale and comparisons allow half a unit
of it; on PostgreSQL (exact NUMERIC) that tolerance changes nothing. Reservations, settlements,
releases and charges are idempotent on their id (a retried activity repeats nothing).

Defaults come from `policies/budgets.yaml` (`BudgetRules`); an admin's `tenant_budget` rows win.
The rules and result models live in `orchestrator.budgets.rules` (pure), the admin side (limits,
raises, the monthly report) in `orchestrator.budgets.limits`; import everything from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, literal, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.budgets.limits import BudgetLimits, _line
from orchestrator.budgets.rules import (
    EPS,
    BudgetBreach,
    BudgetError,
    BudgetLine,
    BudgetNotFound,
    BudgetReport,
    BudgetRules,
    BudgetRulesError,
    Reservation,
    check_month,
    current_month,
    estimate_worst_case,
    subject_name,
    to_usd,
)
from orchestrator.db import session_scope
from orchestrator.models import MONEY, BudgetCounter, BudgetReservation, Task, table_of, utcnow

__all__ = [
    "BudgetBreach",
    "BudgetError",
    "BudgetLine",
    "BudgetNotFound",
    "BudgetReport",
    "BudgetRules",
    "BudgetRulesError",
    "BudgetService",
    "Reservation",
    "current_month",
    "estimate_worst_case",
    "load_service",
]

RULES_FILE = "budgets.yaml"
Key = tuple[str, str, str]  # scope, subject, period
Spec = tuple[Decimal | None, str] | None  # limit (None: no cap) and on_breach; None: no such budget


def _step_period(task_id: str, step: str) -> str:
    period = f"{task_id}/{step}"
    return period if len(period) <= 120 else f"{task_id}/{step[: 119 - len(task_id)]}"


# Counter updates are Core statements on the session's connection: the ORM's bulk-update
# machinery costs more CPU than the statement and has no loaded counters to synchronise.
COUNTERS = table_of(BudgetCounter)
RESERVATIONS = table_of(BudgetReservation)


def _add(column: Any, amount: Decimal) -> Any:
    return func.round(column + literal(amount, MONEY), 9)


def _breach(counter: BudgetCounter, requested: Decimal, during: str = "reserve") -> BudgetBreach:
    return BudgetBreach(
        scope=counter.scope,
        subject=counter.subject,
        period=counter.period,
        limit_usd=counter.limit_usd,
        spent_usd=counter.spent_usd,
        reserved_usd=counter.reserved_usd,
        requested_usd=requested,
        on_breach=counter.on_breach,
        counter_id=counter.id or 0,
        during=during,
    )


def _reservation(
    row: BudgetReservation, *, replayed: bool = False, over: list[BudgetBreach] | None = None
) -> Reservation:
    return Reservation(
        reservation_id=row.id,
        tenant_id=row.tenant_id,
        task_id=row.task_id,
        amount_usd=row.amount_usd,
        counter_ids=[int(i) for i in row.counter_ids.split(",") if i],
        status=row.status,
        settled_usd=row.settled_usd,
        replayed=replayed,
        over=over or [],
    )


KNOWN_COUNTERS_KEPT = 50_000
# A tenant, agent or tool with no monthly limit is asked again after this long: a limit an admin
# sets applies to reservations within a second, as a policy edit or a kill switch does.
UNLIMITED_RECHECK_SECONDS = 1.0
MONTHLY_SCOPES = ("tenant_month", "agent_month", "tool_month")


class BudgetService(BudgetLimits):
    """Reserve, settle, release and charge; plus the limits and reports of `BudgetLimits`."""

    def __init__(self, engine: Engine, rules: BudgetRules) -> None:
        super().__init__(engine, rules)
        # (tenant, scope, subject, period) -> counter id, see `_counters`
        self._known_counters: dict[tuple[str, str, str, str], int] = {}
        # (tenant, scope, subject, period) -> until when it is known to have no limit (monotonic)
        self._unlimited_until: dict[tuple[str, str, str, str], float] = {}

    def _task_spec(self, s: Session, tenant_id: str, task_id: str) -> Spec:
        """The task row's budget (set at submit), else the file's default capped by `task_max`."""
        task = s.exec(
            select(col(Task.id), col(Task.budget_usd)).where(Task.id == task_id, Task.tenant_id == tenant_id)
        ).first()
        if task is None:
            raise BudgetNotFound(f"task {task_id} of tenant {tenant_id} does not exist")
        budget = task[1]
        if budget is None:
            top = self._tenant_spec(s, tenant_id, "task_max", "")[0]
            budget = min(self.rules.task.default_limit_usd, top)
        return budget, self.rules.task.on_breach

    def ensure_task_budget(self, tenant_id: str, task_id: str, limit_usd: Any = None) -> BudgetLine:
        """The task's counter (created once; None = the task row's budget, else the default)."""
        if limit_usd is None:
            spec: Callable[[Session], Spec] = lambda s: self._task_spec(s, tenant_id, task_id)  # noqa: E731
        else:
            limit = to_usd(limit_usd, "the task budget")
            spec = lambda s: (limit, self.rules.task.on_breach)  # noqa: E731
        key = ("task", "", task_id)
        counter_id = self._counters(tenant_id, {key: spec})[key]
        with self._session() as s:
            return _line(s.get_one(BudgetCounter, counter_id), "task")

    # --- counters ---------------------------------------------------------------------------------

    def _counters(
        self, tenant_id: str, wanted: dict[Key, Callable[[Session], Spec] | None]
    ) -> dict[Key, int]:
        """Ids of the wanted counters; missing ones are created when their spec gives a limit.

        A counter, once created, is never deleted or renumbered, so its id is remembered in this
        process and most reservations (the task's second call on) read nothing here; a counter not
        found is looked up again every time (another worker may have created it since), except a
        monthly one whose tenant, agent or tool has no limit: that is asked again after a second."""
        now = time.monotonic()
        known = {key: cid for key in wanted if (cid := self._known_counters.get((tenant_id, *key)))}
        unlimited = {key for key in wanted if self._unlimited_until.get((tenant_id, *key), 0.0) > now}
        if len(known) + len(unlimited - known.keys()) == len(wanted):
            return known
        with self._session() as s:
            match = [
                and_(
                    col(BudgetCounter.scope) == sc,
                    col(BudgetCounter.subject) == su,
                    col(BudgetCounter.period) == pe,
                )
                for sc, su, pe in wanted
                if (sc, su, pe) not in known and (sc, su, pe) not in unlimited
            ]
            rows = s.exec(
                select(
                    BudgetCounter.id, BudgetCounter.scope, BudgetCounter.subject, BudgetCounter.period
                ).where(BudgetCounter.tenant_id == tenant_id, or_(*match))
            ).all()
            found: dict[Key, int] = {(sc, su, pe): cid for cid, sc, su, pe in rows if cid is not None}
            found.update(known)
            for key, make_spec in wanted.items():
                if key in found or key in unlimited or make_spec is None:
                    continue
                spec = make_spec(s)
                if spec is not None and spec[0] is not None:
                    found[key] = self._insert_counter(s, tenant_id, key, spec[0], spec[1])
                elif key[0] in MONTHLY_SCOPES:
                    self._unlimited_until[(tenant_id, *key)] = now + UNLIMITED_RECHECK_SECONDS
        if len(self._known_counters) >= KNOWN_COUNTERS_KEPT:
            self._known_counters.clear()  # a long-lived worker: start over rather than grow
        if len(self._unlimited_until) >= KNOWN_COUNTERS_KEPT:
            self._unlimited_until.clear()
        self._known_counters.update({(tenant_id, *key): cid for key, cid in found.items()})
        return found

    def _insert_counter(self, s: Session, tenant_id: str, key: Key, limit: Decimal, on_breach: str) -> int:
        scope, subject, period = key
        counter = BudgetCounter(
            tenant_id=tenant_id,
            scope=scope,
            subject=subject,
            period=period,
            limit_usd=limit,
            on_breach=on_breach,
        )
        s.add(counter)
        try:
            s.commit()
            assert counter.id is not None  # the INSERT gave it one
            return counter.id
        except IntegrityError:  # another worker created it first
            s.rollback()
            existing = s.exec(
                select(BudgetCounter.id).where(
                    BudgetCounter.tenant_id == tenant_id,
                    BudgetCounter.scope == scope,
                    BudgetCounter.subject == subject,
                    BudgetCounter.period == period,
                )
            ).one()
            assert existing is not None  # a primary key
            return existing

    def _applicable(
        self, tenant_id: str, task_id: str, step: str, agent: str | None, tool: str | None,
        step_limit: Decimal | None, month: str,
    ) -> list[int]:  # fmt: skip
        step_on_breach = self.rules.step.on_breach
        wanted: dict[Key, Callable[[Session], Spec] | None] = {
            ("task", "", task_id): lambda s: self._task_spec(s, tenant_id, task_id),
            # A step without a cap of its own still counts on a counter an earlier call created.
            ("step", "", _step_period(task_id, step)): None
            if step_limit is None
            else lambda s: (step_limit, step_on_breach),
            ("tenant_month", "", month): lambda s: self._tenant_spec(s, tenant_id, "tenant_month", "")[:2],
        }

        def tenant_spec(scope: str, subject: str) -> Callable[[Session], Spec]:
            return lambda s: self._tenant_spec(s, tenant_id, scope, subject)[:2]

        for scope, name in (("agent_month", agent), ("tool_month", tool)):
            if name and (subject := subject_name(name)):
                wanted[(scope, subject, month)] = tenant_spec(scope, subject)
        return sorted(self._counters(tenant_id, wanted).values())

    def _find(self, reservation_id: str) -> BudgetReservation | None:
        with self._session() as s:
            return s.get(BudgetReservation, reservation_id)

    def _replay(self, row: BudgetReservation | None, rid: str, tenant_id: str, task_id: str) -> Reservation:
        if row is None:
            raise BudgetNotFound(f"task {task_id} of tenant {tenant_id} does not exist (reservation {rid})")
        if (row.tenant_id, row.task_id) != (tenant_id, task_id):
            raise BudgetError(f"reservation id {rid} is already used by another task")
        return _reservation(row, replayed=True)

    def _apply(
        self, s: Session, row: BudgetReservation, spent: Decimal, reserved: Decimal, during: str = "settle"
    ) -> list[BudgetBreach]:
        """Move money on the reservation's counters; return the ones now past their limit."""
        ids = sorted(int(i) for i in row.counter_ids.split(",") if i)
        over_ids = []
        for cid in ids:
            # RETURNING the new figures: the check for a breach needs no second read.
            after = (
                s.connection()
                .execute(
                    update(COUNTERS)
                    .where(COUNTERS.c.id == cid)
                    .values(
                        spent_usd=_add(COUNTERS.c.spent_usd, spent),
                        reserved_usd=_add(COUNTERS.c.reserved_usd, reserved),
                        updated_at=utcnow(),
                    )
                    .returning(COUNTERS.c.spent_usd, COUNTERS.c.reserved_usd, COUNTERS.c.limit_usd)
                )
                .one()
            )
            if Decimal(after[0]) + Decimal(after[1]) > Decimal(after[2]) + EPS:
                over_ids.append(cid)
        if not over_ids or spent == 0:
            return []
        over = s.exec(
            select(BudgetCounter)
            .where(col(BudgetCounter.id).in_(over_ids))
            .order_by(col(BudgetCounter.id))
            .execution_options(populate_existing=True)
        ).all()
        return [_breach(c, spent, during) for c in over]

    # --- the call path ----------------------------------------------------------------------------

    def reserve(
        self, *, reservation_id: str, tenant_id: str, task_id: str, step: str, agent: str,
        tool: str | None = None, step_limit_usd: Decimal | None, amount: Decimal, month: str,
    ) -> Reservation | BudgetBreach:  # fmt: skip
        """Reserve `amount` (a call's worst case) on every budget that applies, or on none."""
        amount = to_usd(amount, "the amount to reserve", ROUND_CEILING)
        check_month(month)
        # No read first: a retried reservation fails its insert below and is answered from the row.
        step_limit = None if step_limit_usd is None else to_usd(step_limit_usd, "the step limit")
        ids = self._applicable(tenant_id, task_id, step, agent, tool, step_limit, month)
        with self._session() as s:
            row = BudgetReservation(
                id=reservation_id,
                tenant_id=tenant_id,
                task_id=task_id,
                counter_ids=",".join(map(str, ids)),
                amount_usd=amount,
            )
            s.add(row)
            try:
                s.flush()  # first statement writes: SQLite's write lock is taken before any read
            except IntegrityError:  # the same id reserved concurrently (or no such task)
                s.rollback()
                return self._replay(self._find(reservation_id), reservation_id, tenant_id, task_id)
            for cid in ids:
                fits = COUNTERS.c.spent_usd + COUNTERS.c.reserved_usd + literal(amount, MONEY)
                done = s.connection().execute(
                    update(COUNTERS)
                    .where(COUNTERS.c.id == cid, fits <= COUNTERS.c.limit_usd + literal(EPS, MONEY))
                    .values(reserved_usd=_add(COUNTERS.c.reserved_usd, amount), updated_at=utcnow())
                )
                if done.rowcount != 1:
                    breach = _breach(s.get_one(BudgetCounter, cid, populate_existing=True), amount)
                    s.rollback()
                    self._record_breach(breach, tenant_id, task_id, reservation_id)
                    return breach
            s.commit()
        return _reservation(row)

    def _record_breach(self, breach: BudgetBreach, tenant_id: str, task_id: str, rid: str) -> None:
        with session_scope(self.engine) as s:
            audit.record(
                s,
                tenant_id=tenant_id,
                actor="budgets",
                action="budget.breach",
                subject=f"{breach.scope}:{breach.subject or breach.period}",
                reason=breach.message,
                task_id=task_id,
                data={**breach.model_dump(mode="json"), "reservation_id": rid},
            )

    def settle(self, reservation_id: str, actual: Decimal, session: Session | None = None) -> Reservation:
        """The call's real cost: spent += actual and the reservation is released. Idempotent.

        A reservation released earlier is still settled (the cost was real): it is then only spent.
        With `session`, in the caller's transaction (which commits it with its own records)."""
        actual = to_usd(actual, "the actual cost")
        if session is not None:
            return self._settle(session, reservation_id, actual)
        with self._session() as s:
            settled = self._settle(s, reservation_id, actual)
            s.commit()
        return settled

    def _settle(self, s: Session, reservation_id: str, actual: Decimal) -> Reservation:
        for was in ("reserved", "released"):
            done = s.connection().execute(
                update(RESERVATIONS)
                .where(RESERVATIONS.c.id == reservation_id, RESERVATIONS.c.status == was)
                .values(status="settled", settled_usd=actual)
            )
            if done.rowcount == 1:
                break
        else:  # settled already (or never reserved): nothing was written
            if (found := s.get(BudgetReservation, reservation_id, populate_existing=True)) is None:
                raise BudgetNotFound(f"no budget reservation {reservation_id}")
            return _reservation(found, replayed=True)
        row = s.get_one(BudgetReservation, reservation_id, populate_existing=True)
        over = self._apply(s, row, actual, -row.amount_usd if was == "reserved" else Decimal(0))
        return _reservation(row, over=over)

    def release(self, reservation_id: str) -> Reservation | None:
        """Give back a reservation whose call never happened (None if it was never made)."""
        with self._session() as s:
            done = s.exec(
                update(BudgetReservation)
                .where(
                    col(BudgetReservation.id) == reservation_id, col(BudgetReservation.status) == "reserved"
                )
                .values(status="released")
            )
            if done.rowcount != 1:
                s.rollback()
                row = self._find(reservation_id)
                return None if row is None else _reservation(row, replayed=True)
            row = s.get_one(BudgetReservation, reservation_id, populate_existing=True)
            self._apply(s, row, Decimal(0), -row.amount_usd)
            s.commit()
        return _reservation(row)

    def charge(
        self, *, tenant_id: str, task_id: str, step: str, tool: str, amount: Decimal, charge_id: str,
        agent: str | None = None, month: str | None = None,
    ) -> Reservation:  # fmt: skip
        """A tool's declared cost, known only after it ran: always counted, never refused.

        `over` lists the budgets it pushed past their limit (the next reservation on them fails).
        """
        amount = to_usd(amount, "the tool cost")
        month = check_month(month or current_month())
        if (existing := self._find(charge_id)) is not None:
            return self._replay(existing, charge_id, tenant_id, task_id)
        ids = self._applicable(tenant_id, task_id, step, agent, tool, None, month)
        with self._session() as s:
            row = BudgetReservation(
                id=charge_id,
                tenant_id=tenant_id,
                task_id=task_id,
                counter_ids=",".join(map(str, ids)),
                amount_usd=amount,
                settled_usd=amount,
                status="charged",
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                s.rollback()
                return self._replay(self._find(charge_id), charge_id, tenant_id, task_id)
            over = self._apply(s, row, amount, Decimal(0), "charge")
            s.commit()
        return _reservation(row, over=over)


def load_service(engine: Engine, policies_dir: str | Path) -> BudgetService:
    """`BudgetService` with the rules of `<policies_dir>/budgets.yaml` (BudgetRulesError if invalid)."""
    return BudgetService(engine, BudgetRules.load(Path(policies_dir) / RULES_FILE))
