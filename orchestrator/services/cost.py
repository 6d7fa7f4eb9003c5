"""Cost per resolved task: what a tenant's tasks cost, by workflow, by ISO week and by tier.

Token price is a procurement metric; what a FinOps reader steers by is *cost per resolved task*:
the spend of **every** task (failed attempts, retries, tasks that ended unresolved or escalated,
tasks still running) divided by the tasks that were resolved. The spend of failures is carried
by the successes, so a cheap tier that fails often shows up as expensive here.

The report covers the last `weeks` ISO weeks in UTC, the current one included. A task belongs to
the week it was created in, and all its router requests are counted with it, whenever they
happened; the tier breakdown uses the same calls, so every section adds up to the same total.

Two queries whatever the number of tasks (tasks, then their calls by join); money is summed as
Decimal in Python because SQLite adds NUMERIC columns as floats.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer
from sqlmodel import Session, select

from orchestrator.budgets.rules import NANO, usd
from orchestrator.models import ModelCall, Task

MIN_WEEKS, MAX_WEEKS, DEFAULT_WEEKS = 1, 52, 8
OUTCOMES = ("resolved", "unresolved", "escalated")


def _usd_or_none(value: Decimal | None) -> str | None:
    return None if value is None else usd(value, "")


# JSON carries money as a string ("0.0042") so no client ever rounds it through a float.
Money = Annotated[Decimal, PlainSerializer(lambda d: usd(d, ""), return_type=str, when_used="json")]
MaybeMoney = Annotated[
    Decimal | None, PlainSerializer(_usd_or_none, return_type=str | None, when_used="json")
]


class CostReportError(ValueError):
    """The report cannot be made as asked; the message says what to change."""


class Tally(BaseModel):
    """Tasks, their outcomes and what all their router requests cost."""

    tasks: int = 0
    resolved: int = 0
    unresolved: int = 0
    escalated: int = 0
    without_outcome: int = Field(
        0, description="still running, or ended (cancelled, failed, rejected) without an outcome"
    )
    model_calls: int = Field(0, description="router requests, failed attempts and retries included")
    failed_calls: int = 0
    spend_usd: Money = Decimal(0)
    spend_not_resolved_usd: Money = Field(
        Decimal(0), description="the part of the spend that went to tasks that were not resolved"
    )
    cost_per_resolved_usd: MaybeMoney = Field(
        None, description="spend_usd / resolved; null with no resolved task"
    )
    estimated_usd: Money = Field(
        Decimal(0), description="spend priced from the price table, not reported by the router"
    )
    estimated_calls: int = 0
    estimated_share: float | None = Field(
        None, description="estimated_usd / spend_usd (0..1); null with no spend"
    )


class WorkflowCost(Tally):
    workflow: str = Field(description="name@version")
    name: str
    version: str


class WeekCost(Tally):
    week: str = Field(description="ISO week, e.g. 2026-W27")
    starts: datetime = Field(description="Monday 00:00 UTC")


class ServedModel(BaseModel):
    model: str = Field(description="the model the router served; 'unknown' when it did not say")
    calls: int
    spend_usd: Money


class TierCost(BaseModel):
    tier: str = Field(description="the tier Frontdesk asked the router for")
    calls: int
    failed_calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    spend_usd: Money
    estimated_usd: Money
    models: list[ServedModel] = Field(description="which models served the tier, most spend first")


class Totals(Tally):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class CostReport(BaseModel):
    tenant_id: str
    weeks: int
    since: datetime = Field(description="start of the first week (Monday 00:00 UTC)")
    until: datetime = Field(description="end of the current week (exclusive)")
    generated_at: datetime
    totals: Totals
    by_workflow: list[WorkflowCost] = Field(description="most spend first")
    by_week: list[WeekCost] = Field(description="oldest first; a week without tasks is all zeros")
    by_tier: list[TierCost] = Field(description="most spend first")


@dataclass
class _Acc:
    """Running sums for one row of the report (a workflow, a week or the totals)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    tasks: int = 0
    calls: int = 0
    failed: int = 0
    estimated_calls: int = 0
    spend: Decimal = Decimal(0)
    not_resolved: Decimal = Decimal(0)
    estimated: Decimal = Decimal(0)
    prompt: int = 0
    completion: int = 0

    def add_task(self, outcome: str | None, calls: _Acc) -> None:
        self.tasks += 1
        self.outcomes[outcome if outcome in OUTCOMES else "none"] += 1
        for name in ("calls", "failed", "estimated_calls", "spend", "estimated", "prompt", "completion"):
            setattr(self, name, getattr(self, name) + getattr(calls, name))
        if outcome != "resolved":
            self.not_resolved += calls.spend

    def tally(self) -> dict[str, Any]:
        """The fields of `Tally`, as Python values (Decimal stays Decimal)."""
        resolved = self.outcomes["resolved"]
        return Tally(
            tasks=self.tasks,
            resolved=resolved,
            unresolved=self.outcomes["unresolved"],
            escalated=self.outcomes["escalated"],
            without_outcome=self.outcomes["none"],
            model_calls=self.calls,
            failed_calls=self.failed,
            spend_usd=self.spend,
            spend_not_resolved_usd=self.not_resolved,
            cost_per_resolved_usd=per_resolved(self.spend, resolved),
            estimated_usd=self.estimated,
            estimated_calls=self.estimated_calls,
            estimated_share=share(self.estimated, self.spend),
        ).model_dump()


def per_resolved(spend: Decimal, resolved: int) -> Decimal | None:
    """Spend divided by resolved tasks, at the money columns' 1e-9 USD scale."""
    if resolved <= 0:
        return None
    return (spend / resolved).quantize(NANO, rounding=ROUND_HALF_UP)


def share(part: Decimal, whole: Decimal) -> float | None:
    if whole <= 0:
        return None
    return float((part / whole).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def check_weeks(weeks: int) -> int:
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not MIN_WEEKS <= weeks <= MAX_WEEKS:
        raise CostReportError(
            f"weeks must be a whole number from {MIN_WEEKS} to {MAX_WEEKS} (got {weeks!r}); "
            f"it counts ISO weeks back from the current one, which is included."
        )
    return weeks


def _utc(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def week_start(dt: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week `dt` falls in."""
    day = _utc(dt).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def week_label(start: datetime) -> str:
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


def _money(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def cost_report(
    session: Session, tenant_id: str, weeks: int = DEFAULT_WEEKS, now: datetime | None = None
) -> CostReport:
    """The tenant's cost per resolved task over the last `weeks` ISO weeks (UTC)."""
    check_weeks(weeks)
    now = _utc(now or datetime.now(UTC))
    until = week_start(now) + timedelta(days=7)
    since = until - timedelta(days=7 * weeks)
    in_window = (Task.tenant_id == tenant_id, Task.created_at >= since, Task.created_at < until)

    tasks = session.exec(
        select(Task.id, Task.workflow_name, Task.workflow_version, Task.outcome, Task.created_at).where(  # type: ignore[call-overload]  # sqlmodel types select() for at most 4 columns
            *in_window
        )
    ).all()
    calls = session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() for at most 4 columns
            ModelCall.task_id,
            ModelCall.tier,
            ModelCall.model_served,
            ModelCall.cost_usd,
            ModelCall.cost_estimated,
            ModelCall.prompt_tokens,
            ModelCall.completion_tokens,
            ModelCall.cached_tokens,
            ModelCall.ok,
        )
        .join(Task, Task.id == ModelCall.task_id)
        .where(ModelCall.tenant_id == tenant_id, *in_window)
    ).all()

    per_task: dict[str, _Acc] = {}
    tiers: dict[str, _TierAcc] = {}
    for task_id, tier, served, cost, estimated, prompt, completion, cached, ok in calls:
        amount = _money(cost)
        acc = per_task.setdefault(task_id, _Acc())
        acc.calls += 1
        acc.failed += 0 if ok else 1
        acc.spend += amount
        tokens = (prompt or 0, completion or 0, cached or 0)
        acc.prompt += tokens[0]
        acc.completion += tokens[1]
        if estimated:
            acc.estimated += amount
            acc.estimated_calls += 1
        tiers.setdefault(tier, _TierAcc()).add(served, amount, bool(estimated), bool(ok), tokens)

    empty = _Acc()
    totals = _Acc()
    workflows: dict[tuple[str, str], _Acc] = {}
    week_rows = {since + timedelta(days=7 * i): _Acc() for i in range(weeks)}
    for task_id, name, version, outcome, created_at in tasks:
        spent = per_task.get(task_id, empty)
        totals.add_task(outcome, spent)
        workflows.setdefault((name, version), _Acc()).add_task(outcome, spent)
        week = week_rows.get(week_start(created_at))
        if week is not None:  # always, unless a row was stored with a non-UTC wall clock
            week.add_task(outcome, spent)

    by_workflow = [
        WorkflowCost(workflow=f"{name}@{version}", name=name, version=version, **acc.tally())
        for (name, version), acc in sorted(workflows.items(), key=lambda kv: (-kv[1].spend, kv[0]))
    ]
    return CostReport(
        tenant_id=tenant_id,
        weeks=weeks,
        since=since,
        until=until,
        generated_at=now,
        totals=Totals(**totals.tally(), prompt_tokens=totals.prompt, completion_tokens=totals.completion),
        by_workflow=by_workflow,
        by_week=[
            WeekCost(week=week_label(start), starts=start, **acc.tally()) for start, acc in week_rows.items()
        ],
        by_tier=[
            acc.build(tier) for tier, acc in sorted(tiers.items(), key=lambda kv: (-kv[1].spend, kv[0]))
        ],
    )


@dataclass
class _ModelAcc:
    calls: int = 0
    spend: Decimal = Decimal(0)


@dataclass
class _TierAcc:
    calls: int = 0
    failed: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    spend: Decimal = Decimal(0)
    estimated: Decimal = Decimal(0)
    models: dict[str, _ModelAcc] = field(default_factory=dict)

    def add(
        self, served: str | None, amount: Decimal, estimated: bool, ok: bool, tokens: tuple[int, int, int]
    ) -> None:
        self.calls += 1
        self.failed += 0 if ok else 1
        self.prompt += tokens[0]
        self.completion += tokens[1]
        self.cached += tokens[2]
        self.spend += amount
        if estimated:
            self.estimated += amount
        model = self.models.setdefault(served or "unknown", _ModelAcc())
        model.calls += 1
        model.spend += amount

    def build(self, tier: str) -> TierCost:
        models = [ServedModel(model=m, calls=a.calls, spend_usd=a.spend) for m, a in self.models.items()]
        models.sort(key=lambda m: (-m.spend_usd, m.model))
        return TierCost(
            tier=tier,
            calls=self.calls,
            failed_calls=self.failed,
            prompt_tokens=self.prompt,
            completion_tokens=self.completion,
            cached_tokens=self.cached,
            spend_usd=self.spend,
            estimated_usd=self.estimated,
            models=models,
        )
