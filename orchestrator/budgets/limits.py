"""Tenant-level budget limits and the people's side of budgets: the limits an admin sets
(`tenant_budget` rows win over `policies/budgets.yaml`), raising one budget after an approved
budget-raise checkpoint, and the monthly report. `BudgetService` (orchestrator.budgets.service) builds on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, literal, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.budgets.rules import (
    MONTH_SCOPES,
    SUBJECT_PATTERN,
    TENANT_SCOPES,
    BudgetError,
    BudgetLine,
    BudgetNotFound,
    BudgetReport,
    BudgetRules,
    check_month,
    current_month,
    subject_name,
    to_usd,
    usd,
)
from orchestrator.db import session_scope
from orchestrator.models import MONEY, BudgetCounter, Task, TenantBudget, utcnow

SUBJECT_RULES = {"agent_month": "agent", "tool_month": "tool"}


def _line(counter: BudgetCounter, source: str) -> BudgetLine:
    remaining = max(counter.limit_usd - counter.spent_usd - counter.reserved_usd, Decimal(0))
    return BudgetLine(
        scope=counter.scope,
        subject=counter.subject,
        period=counter.period,
        task_id=counter.period.partition("/")[0] if counter.scope in ("task", "step") else None,
        limit_usd=counter.limit_usd,
        spent_usd=counter.spent_usd,
        reserved_usd=counter.reserved_usd,
        remaining_usd=remaining,
        on_breach=counter.on_breach,
        counter_id=counter.id,
        source=source,
    )


class BudgetLimits:
    """Tenant limits, raises and reports; `orchestrator.budgets.service.BudgetService` adds the call path."""

    def __init__(self, engine: Engine, rules: BudgetRules) -> None:
        self.engine = engine
        self.rules = rules

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- limits -----------------------------------------------------------------------------------

    def _tenant_spec(self, s: Session, tenant_id: str, scope: str, subject: str) -> tuple[Any, str, str]:
        """(limit, on_breach, source) of a tenant-level budget: the admin's row, else the file."""
        row = s.exec(
            select(TenantBudget).where(
                TenantBudget.tenant_id == tenant_id,
                TenantBudget.scope == scope,
                TenantBudget.subject == subject,
            )
        ).first()
        if row is not None:
            return row.limit_usd, row.on_breach, "admin"
        return (*self.rules.default(scope, subject), "file")

    def max_task_budget(self, tenant_id: str) -> Decimal:
        """The most a task of this tenant may be given at submit (`task_max`)."""
        with self._session() as s:
            limit: Decimal = self._tenant_spec(s, tenant_id, "task_max", "")[0]
            return limit

    def check_task_budget(self, tenant_id: str, limit_usd: Any) -> Decimal:
        """A submit-time task budget, validated against the tenant's maximum; BudgetError if refused."""
        limit = to_usd(limit_usd, "the task budget")
        top = self.max_task_budget(tenant_id)
        if limit <= 0 or limit > top:
            raise BudgetError(
                f"a task budget must be above $0 and at most this tenant's maximum per task, {usd(top)}; "
                f"got {usd(limit)}"
            )
        return limit

    # --- people -----------------------------------------------------------------------------------

    def raise_limit(
        self, counter_id: int, new_limit_usd: Any, actor: str, *, tenant_id: str | None = None
    ) -> BudgetLine:
        """Raise one counter's limit (an approved budget-raise checkpoint); must be above the current.

        Asking again for the limit the counter already has is a no-op (a retried activity).
        """
        new = to_usd(new_limit_usd, "the new limit")
        with self._session() as s:
            before = s.get(BudgetCounter, counter_id)
            if before is None or tenant_id not in (None, before.tenant_id):
                raise BudgetNotFound(f"no budget counter {counter_id}")
            done = s.exec(
                update(BudgetCounter)
                .where(col(BudgetCounter.id) == counter_id, col(BudgetCounter.limit_usd) < literal(new, MONEY))
                .values(limit_usd=new, updated_at=utcnow())
            )
            counter = s.get_one(BudgetCounter, counter_id, populate_existing=True)
            if done.rowcount != 1:
                s.rollback()
                if counter.limit_usd == new:
                    return _line(counter, "task" if counter.scope in ("task", "step") else "admin")
                raise BudgetError(
                    f"the new limit {usd(new)} must be above the current limit {usd(counter.limit_usd)}"
                )
            task_scoped = counter.scope in ("task", "step")
            audit.record(
                s,
                tenant_id=counter.tenant_id,
                actor=actor,
                action="budget.raised",
                subject=f"{counter.scope}:{counter.subject or counter.period}",
                reason=f"{counter.scope} budget raised from {usd(before.limit_usd)} to {usd(new)}",
                task_id=counter.period.partition("/")[0] if task_scoped else None,
                data={"counter_id": counter_id, "from_usd": str(before.limit_usd), "to_usd": str(new)},
            )
            s.commit()
        return _line(counter, "task" if task_scoped else "admin")

    def set_tenant_budget(
        self, tenant_id: str, scope: str, subject: str, limit_usd: Any, on_breach: str | None, actor: str
    ) -> BudgetLine:
        """An admin's limit for tenant_month | agent_month | tool_month | task_max (wins over the file).

        Counters of the current and later months take the new limit and breach rule at once.
        """
        if scope not in TENANT_SCOPES:
            raise BudgetError(f"scope must be one of {', '.join(TENANT_SCOPES)}, got {scope!r}")
        subject = (subject or "").strip()
        if scope in SUBJECT_RULES:
            subject = subject_name(subject)
            if not SUBJECT_PATTERN.match(subject):
                raise BudgetError(
                    f"{scope} needs a subject: the {SUBJECT_RULES[scope]} name, e.g. refund_agent"
                )
        elif subject:
            raise BudgetError(f"{scope} applies to the whole tenant: leave the subject empty")
        limit = to_usd(limit_usd, "limit_usd")
        on_breach = on_breach or self.rules.default(scope, subject)[1]
        if on_breach not in ("pause", "stop"):
            raise BudgetError(f"on_breach must be pause or stop, got {on_breach!r}")
        with session_scope(self.engine) as s:
            # The audit write comes first: it serializes admins of one tenant on both databases.
            audit.record(
                s,
                tenant_id=tenant_id,
                actor=actor,
                action="budget.set",
                subject=f"{scope}:{subject}" if subject else scope,
                reason=f"{scope} limit set to {usd(limit)}, on breach {on_breach}",
                data={"scope": scope, "subject": subject, "limit_usd": str(limit), "on_breach": on_breach},
            )
            row = s.exec(
                select(TenantBudget).where(
                    TenantBudget.tenant_id == tenant_id,
                    TenantBudget.scope == scope,
                    TenantBudget.subject == subject,
                )
            ).first() or TenantBudget(
                tenant_id=tenant_id, scope=scope, subject=subject, limit_usd=limit, updated_by=actor
            )
            row.limit_usd, row.on_breach, row.updated_by, row.updated_at = limit, on_breach, actor, utcnow()
            s.add(row)
            if scope in MONTH_SCOPES:
                s.exec(
                    update(BudgetCounter)
                    .where(
                        col(BudgetCounter.tenant_id) == tenant_id,
                        col(BudgetCounter.scope) == scope,
                        col(BudgetCounter.subject) == subject,
                        col(BudgetCounter.period) >= current_month(),
                    )
                    .values(limit_usd=limit, on_breach=on_breach, updated_at=utcnow())
                )
        report = self.list_budgets(tenant_id, current_month())
        return next(b for b in report.budgets if (b.scope, b.subject) == (scope, subject))

    def list_budgets(self, tenant_id: str, month: str) -> BudgetReport:
        """Tenant, agent and tool budgets of `month` with their spend, `task_max`, and the task and
        step counters of the tasks created that month."""
        year, mon = map(int, check_month(month).split("-"))
        start = datetime(year, mon, 1, tzinfo=UTC)
        end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
        with self._session() as s:
            admin = {
                (r.scope, r.subject): r
                for r in s.exec(select(TenantBudget).where(TenantBudget.tenant_id == tenant_id))
            }
            counters = {
                (c.scope, c.subject): c
                for c in s.exec(
                    select(BudgetCounter).where(
                        BudgetCounter.tenant_id == tenant_id,
                        col(BudgetCounter.scope).in_(MONTH_SCOPES),
                        BudgetCounter.period == month,
                    )
                )
            }
            keys = {("tenant_month", ""), *counters, *(k for k in admin if k[0] in MONTH_SCOPES)}
            keys |= {(sc, su) for sc in SUBJECT_RULES for su in getattr(self.rules, sc).limits}
            budgets: list[BudgetLine] = []
            for scope, subject in sorted(keys, key=lambda k: (MONTH_SCOPES.index(k[0]), k[1])):
                source = "admin" if (scope, subject) in admin else "file"
                if (counter := counters.get((scope, subject))) is not None:
                    budgets.append(_line(counter, source))
                    continue
                limit, on_breach, source = self._tenant_spec(s, tenant_id, scope, subject)
                line = BudgetLine(
                    scope=scope, subject=subject, period=month, limit_usd=limit, on_breach=on_breach
                )
                budgets.append(line.model_copy(update={"remaining_usd": limit, "source": source}))
            limit, on_breach, source = self._tenant_spec(s, tenant_id, "task_max", "")
            budgets.append(BudgetLine(scope="task_max", limit_usd=limit, on_breach=on_breach, source=source))
            of_task = or_(
                and_(col(BudgetCounter.scope) == "task", col(BudgetCounter.period) == col(Task.id)),
                and_(
                    col(BudgetCounter.scope) == "step",
                    func.substr(BudgetCounter.period, 1, func.length(Task.id) + 1) == Task.id + "/",
                ),
            )
            tasks = s.exec(
                select(BudgetCounter)
                .join(Task, of_task)
                .where(
                    BudgetCounter.tenant_id == tenant_id,
                    Task.tenant_id == tenant_id,
                    Task.created_at >= start,
                    Task.created_at < end,
                )
                .order_by(col(BudgetCounter.period), col(BudgetCounter.id))
            ).all()
        return BudgetReport(
            tenant_id=tenant_id, month=month, budgets=budgets, tasks=[_line(c, "task") for c in tasks]
        )
