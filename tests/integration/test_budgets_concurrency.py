"""Budgets under concurrency on SQLite and PostgreSQL: real threads, real databases, no mocks.

The headline: 50 concurrent steps against a small budget never overshoot it by more than one call's
maximum, every refused reservation names the budget that tripped, and the number of reservations
that succeed is exactly what the limit allows.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

import pytest
from repo_paths import SHIPPED_POLICIES
from sqlmodel import select

from orchestrator.budgets import service as budget_service_module
from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import (
    BudgetBreach,
    BudgetError,
    BudgetNotFound,
    BudgetRules,
    BudgetService,
    Reservation,
    current_month,
    estimate_worst_case,
)
from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_tenant
from orchestrator.models import AuditEvent, BudgetCounter, BudgetReservation, Task

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
PRICES = PriceTable.load(SHIPPED_POLICIES / "prices.yaml")
# One call's maximum: a 400-character prompt and max_tokens=140 at the frontier tier = $0.004.
MAX_CALL = estimate_worst_case(PRICES, "tier-frontier", 400, 140)
N = 50
NANO = D("0.000000001")


def make_rules(**override: Any) -> BudgetRules:
    data: dict[str, Any] = {
        "task": {"default_limit_usd": "0.50", "max_limit_usd": "5.00", "on_breach": "pause"},
        "step": {"on_breach": "pause"},
        "tenant_month": {"limit_usd": "100", "on_breach": "stop"},
    }
    return BudgetRules.from_dict({**data, **override})


@dataclass
class World:
    db: Any
    budgets: BudgetService
    tenant: str
    month: str

    def task(self, budget: D | None = None) -> str:
        with session_scope(self.db.engine) as session:
            task = Task(
                tenant_id=self.tenant,
                requester_id=self.db.user_ids["riley"],
                workflow_name="budget_test",
                workflow_version="1",
                input_text="-",
                definition_json="{}",
                budget_usd=budget,
            )
            session.add(task)
        return task.id

    def counter(self, scope: str, period: str, subject: str = "") -> BudgetCounter:
        with session_scope(self.db.engine) as session:
            return session.exec(
                select(BudgetCounter).where(
                    BudgetCounter.tenant_id == self.tenant,
                    BudgetCounter.scope == scope,
                    BudgetCounter.subject == subject,
                    BudgetCounter.period == period,
                )
            ).one()

    def rid(self, name: str) -> str:
        """Reservation ids are global: prefix them with this test's tenant."""
        return f"{self.tenant}:{name}"

    def reserve(self, task_id: str, rid: str, amount: D = MAX_CALL, **kw: Any) -> Reservation | BudgetBreach:
        args: dict[str, Any] = {"step": "answer", "agent": "refund_agent@1", "step_limit_usd": None}
        args.update(kw)
        return self.budgets.reserve(
            reservation_id=self.rid(rid),
            tenant_id=self.tenant,
            task_id=task_id,
            amount=amount,
            month=self.month,
            **args,
        )


def world(db: Any, rules: BudgetRules | None = None) -> World:
    tenant = f"bud{secrets.token_hex(5)}"
    with session_scope(db.engine) as session:
        ensure_tenant(session, tenant, "budget test tenant")
    return World(db, BudgetService(db.engine, rules or make_rules()), tenant, current_month())


def run_concurrently(n: int, work: Callable[[int, threading.Barrier], Any]) -> list[Any]:
    """Run `work(i, barrier)` on n threads that start together; re-raise the first error."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n, timeout=120)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors[0]
    return results


def actual_cost(rng: random.Random) -> D:
    """A real cost at most the reserved worst case (usually less)."""
    return (MAX_CALL * D(rng.uniform(0.3, 1.0))).quantize(NANO)


def report(label: str, limit: D, spent: D, ok: int, of: str = f"{N} steps") -> None:
    print(
        f"\n[{label}] limit ${limit} spent ${spent} overshoot ${spent - limit} reservations ok {ok} of {of}"
    )


# --- the headline ------------------------------------------------------------------------------------


@BOTH
def test_50_steps_of_one_task_against_a_small_task_budget(db: Any) -> None:
    w = world(db)
    limit = MAX_CALL * 12  # exactly 12 worst cases: the boundary itself must be allowed
    task_id = w.task()
    task_counter = w.budgets.ensure_task_budget(w.tenant, task_id, limit)
    rng = random.Random(7)
    costs = [actual_cost(rng) for _ in range(N)]

    def step(i: int, barrier: threading.Barrier) -> tuple[Any, D]:
        outcome = w.reserve(task_id, f"{task_id}:call:{i}", step=f"step-{i % 5}")
        barrier.wait()  # every reservation is in before any settles: the limit alone decides
        if isinstance(outcome, Reservation):
            w.budgets.settle(outcome.reservation_id, costs[i])
            return outcome, costs[i]
        return outcome, D(0)

    results = run_concurrently(N, step)
    ok = [r for r, _ in results if isinstance(r, Reservation)]
    refused = [r for r, _ in results if isinstance(r, BudgetBreach)]
    assert len(ok) == 12 and len(refused) == N - 12
    for breach in refused:
        assert breach.scope == "task" and breach.counter_id == task_counter.counter_id
        assert breach.on_breach == "pause" and breach.requested_usd == MAX_CALL
        assert breach.message.startswith(f"task budget exceeded (task {task_id}): limit $0.048, spent $")
        assert breach.spent_usd + breach.reserved_usd + breach.requested_usd > breach.limit_usd
    counter = w.counter("task", task_id)
    assert counter.spent_usd == sum(cost for _, cost in results)
    assert counter.spent_usd <= limit + MAX_CALL
    assert counter.reserved_usd == 0
    month = w.counter("tenant_month", w.month)
    assert (month.spent_usd, month.reserved_usd) == (counter.spent_usd, 0)
    report(f"task budget, {db.url.split(':')[0]}", limit, counter.spent_usd, len(ok))


@BOTH
def test_50_tasks_against_a_small_tenant_month_budget(db: Any) -> None:
    w = world(db)
    limit = MAX_CALL * 25
    line = w.budgets.set_tenant_budget(w.tenant, "tenant_month", "", limit, "stop", "usr_admin")
    assert (line.limit_usd, line.source) == (limit, "admin")  # the admin's limit wins over the file
    tasks = [w.task() for _ in range(N)]
    rng = random.Random(11)
    costs = [actual_cost(rng) for _ in range(N)]

    def one_task(i: int, barrier: threading.Barrier) -> Any:
        outcome = w.reserve(tasks[i], f"{tasks[i]}:call:0")
        barrier.wait()
        if isinstance(outcome, Reservation):
            w.budgets.settle(outcome.reservation_id, costs[i])
        return outcome

    results = run_concurrently(N, one_task)
    ok = [i for i, r in enumerate(results) if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, BudgetBreach)]
    assert len(ok) == 25 and len(refused) == 25
    for breach in refused:
        assert (breach.scope, breach.period, breach.on_breach) == ("tenant_month", w.month, "stop")
        assert breach.message.startswith(
            f"tenant_month budget exceeded (the tenant's month {w.month}): limit $0.10"
        )
        assert breach.message.endswith("the step stops")
    month = w.counter("tenant_month", w.month)
    assert month.spent_usd == sum(costs[i] for i in ok) and month.reserved_usd == 0
    assert month.spent_usd <= limit + MAX_CALL
    for i, task_id in enumerate(tasks):  # all or nothing: a refused task holds nothing on its own budget
        counter = w.counter("task", task_id)
        assert counter.reserved_usd == 0
        assert counter.spent_usd == (costs[i] if i in ok else 0)
    report(f"tenant_month budget, {db.url.split(':')[0]}", limit, month.spent_usd, len(ok))


@BOTH
def test_50_agent_loops_reserving_and_settling_until_refused(db: Any) -> None:
    """Free running: each step reserves, settles, and goes again until its task budget refuses."""
    w = world(db)
    limit = D("0.1")
    task_id = w.task(budget=limit)  # the task row's budget (set at submit) is the counter's limit

    def loop(i: int, _: threading.Barrier) -> tuple[int, D, BudgetBreach]:
        rng, calls, spent = random.Random(i), 0, D(0)
        while True:
            outcome = w.reserve(task_id, f"{task_id}:{i}:{calls}", step=f"s{i}")
            if isinstance(outcome, BudgetBreach):
                return calls, spent, outcome
            cost = actual_cost(rng)
            w.budgets.settle(outcome.reservation_id, cost)
            calls, spent = calls + 1, spent + cost

    results = run_concurrently(N, loop)
    counter = w.counter("task", task_id)
    assert counter.spent_usd == sum(spent for _, spent, _ in results)
    assert counter.reserved_usd == 0 and counter.spent_usd <= limit + MAX_CALL
    assert sum(calls for calls, _, _ in results) >= limit // MAX_CALL  # at least what worst cases allow
    assert all(b.scope == "task" and b.period == task_id for _, _, b in results)
    calls = sum(c for c, _, _ in results)
    report(f"free-running loops, {db.url.split(':')[0]}", limit, counter.spent_usd, calls, "all calls")


# --- idempotency ------------------------------------------------------------------------------------


@BOTH
def test_reserve_settle_release_and_charge_are_idempotent_under_concurrent_retries(db: Any) -> None:
    w = world(db)
    task_id = w.task()
    rid = f"{task_id}:retried"
    reserved = run_concurrently(N, lambda i, _: w.reserve(task_id, rid))
    assert all(isinstance(r, Reservation) and r.reservation_id == w.rid(rid) for r in reserved)
    assert sum(not r.replayed for r in reserved) == 1
    assert w.counter("task", task_id).reserved_usd == MAX_CALL  # once, not 50 times

    settled = run_concurrently(N, lambda i, _: w.budgets.settle(w.rid(rid), D("0.003")))
    assert sum(not r.replayed for r in settled) == 1 and all(r.status == "settled" for r in settled)
    counter = w.counter("task", task_id)
    assert (counter.spent_usd, counter.reserved_usd) == (D("0.003"), 0)
    assert w.budgets.release(w.rid(rid)).replayed  # type: ignore[union-attr]
    assert w.budgets.release("never-reserved") is None
    assert w.counter("task", task_id).spent_usd == D("0.003")

    charged = run_concurrently(
        10,
        lambda i, _: w.budgets.charge(
            tenant_id=w.tenant,
            task_id=task_id,
            step="answer",
            tool="send_email",
            amount=D("0.01"),
            charge_id=f"{task_id}:tool:1",
        ),
    )
    assert sum(not c.replayed for c in charged) == 1
    assert w.counter("task", task_id).spent_usd == D("0.013")
    with session_scope(db.engine) as session:
        rows = session.exec(select(BudgetReservation).where(BudgetReservation.task_id == task_id)).all()
    assert sorted(r.status for r in rows) == ["charged", "settled"]
    with pytest.raises(BudgetError, match="already used by another task"):
        w.reserve(w.task(), rid)
    with pytest.raises(BudgetNotFound):
        w.budgets.settle("no-such-reservation", D("0.01"))


@BOTH
def test_a_released_reservation_is_given_back_and_a_late_settle_still_counts(db: Any) -> None:
    w = world(db)
    task_id = w.task()
    first = w.reserve(task_id, f"{task_id}:a")
    assert isinstance(first, Reservation)
    assert w.budgets.release(first.reservation_id).status == "released"  # type: ignore[union-attr]
    assert w.counter("task", task_id).reserved_usd == 0
    late = w.budgets.settle(first.reservation_id, D("0.002"))  # the call did happen after all
    assert late.status == "settled"
    counter = w.counter("task", task_id)
    assert (counter.spent_usd, counter.reserved_usd) == (D("0.002"), 0)


# --- exact boundaries (SQLite stores NUMERIC as floating point) -------------------------------------


@BOTH
def test_limit_boundaries_are_exact(db: Any) -> None:
    w = world(db)
    task_id = w.task()
    w.budgets.ensure_task_budget(w.tenant, task_id, D("0.3"))
    assert isinstance(w.reserve(task_id, "b1", D("0.1")), Reservation)
    assert isinstance(w.reserve(task_id, "b2", D("0.2")), Reservation)  # 0.1 + 0.2 == 0.3 exactly
    tiny = w.reserve(task_id, "b3", D("0.000000001"))
    assert isinstance(tiny, BudgetBreach) and tiny.scope == "task"
    w.budgets.settle(w.rid("b1"), D("0.1"))
    w.budgets.settle(w.rid("b2"), D("0.2"))
    counter = w.counter("task", task_id)
    assert (counter.spent_usd, counter.reserved_usd) == (D("0.3"), D(0))
    assert isinstance(w.reserve(task_id, "b3", D("0.000000001")), BudgetBreach)
    w.budgets.raise_limit(counter.id, D("0.300000001"), "usr_admin")  # type: ignore[arg-type]
    assert isinstance(w.reserve(task_id, "b3", D("0.0000000001")), Reservation)  # rounds up to 1e-9
    assert isinstance(w.reserve(task_id, "b4", D("0.000000001")), BudgetBreach)


# --- which budgets apply ------------------------------------------------------------------------------


@BOTH
def test_step_agent_and_tool_budgets_and_all_or_nothing(db: Any) -> None:
    rules = make_rules(
        agent_month={"limits": {"refund_agent": "0.01"}, "on_breach": "stop"},
        tool_month={"limits": {"send_email": "0.02"}},
    )
    w = world(db, rules)
    task_id = w.task()
    amt = D("0.004")
    kw = {"tool": "send_email", "step_limit_usd": D("0.005")}
    first = w.reserve(task_id, "r1", amt, step="one", **kw)
    assert isinstance(first, Reservation) and len(first.counter_ids) == 5
    step_breach = w.reserve(task_id, "r2", amt, step="one", **kw)
    assert isinstance(step_breach, BudgetBreach)
    assert (step_breach.scope, step_breach.period, step_breach.on_breach) == (
        "step",
        f"{task_id}/one",
        "pause",
    )
    assert step_breach.message.startswith(
        f"step budget exceeded (step 'one' of task {task_id}): limit $0.005"
    )
    assert w.counter("task", task_id).reserved_usd == amt  # the refused call holds nothing anywhere
    assert isinstance(w.reserve(task_id, "r3", amt, step="two", **kw), Reservation)
    agent_breach = w.reserve(task_id, "r4", amt, step="three", **kw)
    assert isinstance(agent_breach, BudgetBreach)
    assert (agent_breach.scope, agent_breach.subject, agent_breach.on_breach) == (
        "agent_month",
        "refund_agent",
        "stop",
    )
    assert "agent 'refund_agent'" in agent_breach.message
    for rid in ("r1", "r3"):
        w.budgets.settle(w.rid(rid), amt)
    charge = w.budgets.charge(
        tenant_id=w.tenant,
        task_id=task_id,
        step="two",
        tool="send_email@1",
        amount=D("0.05"),
        charge_id=w.rid("c1"),
    )
    assert {(o.scope, o.during) for o in charge.over} == {("tool_month", "charge"), ("step", "charge")}
    assert all("this tool charged $0.05" in o.message for o in charge.over)
    tool_breach = w.reserve(task_id, "r5", amt, step="four", agent="summary_agent@1", tool="send_email")
    assert isinstance(tool_breach, BudgetBreach) and tool_breach.scope == "tool_month"
    # summary_agent has no agent budget and no tool: only task + tenant month apply
    plain = w.reserve(task_id, "r6", amt, step="four", agent="summary_agent@1")
    assert isinstance(plain, Reservation) and len(plain.counter_ids) == 2
    assert w.counter("tool_month", w.month, "send_email").spent_usd == D("0.058")


def test_an_agent_limit_set_by_an_admin_applies_within_a_second(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker remembers for a second that an agent has no monthly limit (no lookup per call);
    a limit an admin sets then applies from the next reservation after that second."""
    w = world(db)
    task_id = w.task()
    clock = [1000.0]
    monkeypatch.setattr(budget_service_module.time, "monotonic", lambda: clock[0])
    first = w.reserve(task_id, "u1", D("0.004"), step="one", agent="summary_agent@1")
    assert isinstance(first, Reservation) and len(first.counter_ids) == 2  # task + tenant month
    w.budgets.set_tenant_budget(w.tenant, "agent_month", "summary_agent", "0.001", None, "test")
    clock[0] += 0.5  # still remembered as unlimited: not counted yet
    second = w.reserve(task_id, "u2", D("0.004"), step="two", agent="summary_agent@1")
    assert isinstance(second, Reservation) and len(second.counter_ids) == 2
    clock[0] += 0.6  # past the second: the admin's limit applies
    third = w.reserve(task_id, "u3", D("0.004"), step="three", agent="summary_agent@1")
    assert isinstance(third, BudgetBreach) and (third.scope, third.subject) == ("agent_month", "summary_agent")


# --- people: raising a limit, admin limits, the report -------------------------------------------------


@BOTH
def test_breach_then_raise_then_the_same_call_goes_through(db: Any) -> None:
    w = world(db)
    task_id = w.task()
    w.budgets.ensure_task_budget(w.tenant, task_id, D("0.005"))
    assert isinstance(w.reserve(task_id, "x1"), Reservation)
    breach = w.reserve(task_id, "x2")
    assert isinstance(breach, BudgetBreach)
    with pytest.raises(BudgetError, match=r"must be above the current limit \$0.005"):
        w.budgets.raise_limit(breach.counter_id, D("0.004"), "usr_admin")
    with pytest.raises(BudgetNotFound):
        w.budgets.raise_limit(breach.counter_id, D("1"), "usr_admin", tenant_id="someone-else")
    line = w.budgets.raise_limit(breach.counter_id, D("0.01"), "usr_admin")
    assert (line.limit_usd, line.reserved_usd) == (D("0.01"), MAX_CALL)
    assert w.budgets.raise_limit(breach.counter_id, D("0.01"), "usr_admin").limit_usd == D("0.01")  # a retry
    assert isinstance(w.reserve(task_id, "x2"), Reservation)  # the retried call, same id
    with session_scope(db.engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.tenant_id == w.tenant)).all()
    actions = [e.action for e in events]
    assert actions.count("budget.breach") == 1 and actions.count("budget.raised") == 1
    refused = next(e for e in events if e.action == "budget.breach")
    assert refused.task_id == task_id and refused.reason == breach.message


@BOTH
def test_admin_limits_apply_to_this_months_counters_and_the_report(db: Any) -> None:
    w = world(db)
    task_id = w.task()
    assert isinstance(w.reserve(task_id, "m1"), Reservation)
    w.budgets.set_tenant_budget(w.tenant, "tenant_month", "", D("0.005"), None, "usr_admin")
    month = w.counter("tenant_month", w.month)
    assert (month.limit_usd, month.on_breach) == (D("0.005"), "stop")  # the open counter follows at once
    breach = w.reserve(task_id, "m2")
    assert isinstance(breach, BudgetBreach) and breach.scope == "tenant_month"
    w.budgets.set_tenant_budget(w.tenant, "agent_month", "refund_agent@2", "3", "pause", "usr_admin")
    w.budgets.set_tenant_budget(w.tenant, "task_max", "", "0.2", None, "usr_admin")
    assert w.budgets.max_task_budget(w.tenant) == D("0.2")
    with pytest.raises(BudgetError, match=r"at most this tenant's maximum per task, \$0.20"):
        w.budgets.check_task_budget(w.tenant, "0.3")
    assert w.budgets.check_task_budget(w.tenant, "0.15") == D("0.15")
    capped = w.task()  # no budget of its own: the file's default 0.50, capped by task_max
    assert w.budgets.ensure_task_budget(w.tenant, capped).limit_usd == D("0.2")
    for scope, subject in [
        ("galaxy", ""),
        ("agent_month", ""),
        ("tenant_month", "x"),
        ("tool_month", "bad name"),
    ]:
        with pytest.raises(BudgetError):
            w.budgets.set_tenant_budget(w.tenant, scope, subject, "1", None, "usr_admin")
    with pytest.raises(BudgetError, match="on_breach must be pause or stop"):
        w.budgets.set_tenant_budget(w.tenant, "tenant_month", "", "1", "halt", "usr_admin")

    report = w.budgets.list_budgets(w.tenant, w.month)
    budgets = {(b.scope, b.subject): b for b in report.budgets}
    assert set(budgets) == {("tenant_month", ""), ("agent_month", "refund_agent"), ("task_max", "")}
    tenant_month = budgets[("tenant_month", "")]
    assert (tenant_month.limit_usd, tenant_month.reserved_usd, tenant_month.source) == (
        D("0.005"),
        MAX_CALL,
        "admin",
    )
    assert tenant_month.remaining_usd == D("0.001")
    assert budgets[("agent_month", "refund_agent")].counter_id is None  # no spend yet this month
    assert {(t.scope, t.task_id) for t in report.tasks} == {("task", task_id), ("task", capped)}
    assert w.budgets.list_budgets(w.tenant, "2001-01").tasks == []
