"""cost_report on a real (fresh, migrated) SQLite database: exact Decimal figures, empty weeks,
estimated share, tenant isolation and a fixed number of queries."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import psycopg
import pytest
from conftest import PG_ADMIN_URL
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.models import ModelCall, Task, Tenant, User
from orchestrator.services.cost import CostReport, CostReportError, cost_report, per_resolved, week_start

NOW = datetime(2026, 7, 8, 12, 0, tzinfo=UTC)  # Wednesday of ISO week 2026-W28 (Monday 6 July)
W28 = datetime(2026, 7, 6, tzinfo=UTC)
W27, W26, W25 = (W28 - timedelta(weeks=n) for n in (1, 2, 3))
_ids = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated database: a SQLite file, and PostgreSQL too (timestamptz, NUMERIC)."""
    with _database(request.param, tmp_path) as url:
        migrate(url)
        eng = make_engine(url)
        try:
            yield from _with_tenants(eng)
        finally:
            eng.dispose()


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'cost.db'}"
        return
    name = f"frontdesk_cost_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_tenants(eng: Engine) -> Iterator[Engine]:
    with session_scope(eng) as s:
        s.add(Tenant(id="t1", name="One"))
        s.add(Tenant(id="t2", name="Two"))
        s.add(User(id="usr_1", email="u1@example.com", name="U1"))
    yield eng


def add_task(
    s: Session,
    workflow: str,
    outcome: str | None,
    created: datetime,
    calls: list[dict[str, object]] | None = None,
    *,
    tenant: str = "t1",
    status: str = "completed",
) -> str:
    name, version = workflow.split("@")
    task = Task(
        id=f"tsk_{next(_ids)}",
        tenant_id=tenant,
        requester_id="usr_1",
        workflow_name=name,
        workflow_version=version,
        input_text="x",
        definition_json="{}",
        status=status,
        outcome=outcome,
        created_at=created,
    )
    s.add(task)
    s.flush()
    for n, call in enumerate(calls or [], 1):
        s.add(
            ModelCall(
                tenant_id=tenant,
                task_id=task.id,
                step="s",
                agent="a",
                turn=1,
                request_id=f"{task.id}-r{n}",
                attempt=n,
                tier=str(call["tier"]),
                model_served=call.get("model"),  # type: ignore[arg-type]
                cost_usd=D(str(call["cost"])),
                cost_estimated=bool(call.get("estimated", False)),
                prompt_tokens=int(call.get("in", 0)),  # type: ignore[call-overload]
                completion_tokens=int(call.get("out", 0)),  # type: ignore[call-overload]
                ok=bool(call.get("ok", True)),
            )
        )
    return task.id


@pytest.fixture
def filled(engine: Engine) -> Engine:
    day = timedelta(days=1)
    with session_scope(engine) as s:
        # refund@1: 4 tasks, 2 resolved; the failed attempt and the unresolved task still cost.
        add_task(s, "refund@1", "resolved", W28 + day, [
            {"tier": "tier-open", "model": "demo-open", "cost": "0.010", "in": 100, "out": 20},
            {"tier": "tier-open", "model": "demo-open", "cost": "0.005", "in": 100, "out": 0, "ok": False},
        ])  # fmt: skip
        add_task(s, "refund@1", "unresolved", W28, [  # Monday 00:00 is already W28
            {"tier": "tier-open", "model": "demo-open", "cost": "0.020", "in": 200, "out": 40},
        ])  # fmt: skip
        add_task(s, "refund@1", "resolved", W26 + 2 * day, [
            {"tier": "tier-frontier", "model": None, "cost": "0.100", "estimated": True, "in": 50, "out": 10},
        ])  # fmt: skip
        add_task(s, "refund@1", None, W27 - timedelta(microseconds=1), [  # Sunday 23:59:59.999999: W26
            {"tier": "tier-slm", "model": "demo-slm", "cost": "0.001", "in": 10, "out": 5},
        ], status="running")  # fmt: skip
        # triage@2: nothing resolved, so no cost per resolved task.
        add_task(s, "triage@2", "escalated", W26 + 3 * day, [
            {"tier": "tier-frontier", "model": "demo-frontier", "cost": "0.050", "in": 30, "out": 30},
        ])  # fmt: skip
        add_task(s, "triage@2", None, W25 + 4 * day, [], status="failed")
        # Outside the window (4 weeks back from W28 starts at W25) and another tenant: not counted.
        add_task(
            s, "refund@1", "resolved", W25 - timedelta(seconds=1), [{"tier": "tier-open", "cost": "1.00"}]
        )
        add_task(s, "refund@1", "resolved", W28 + day, [{"tier": "tier-open", "cost": "5.00"}], tenant="t2")
        add_task(s, "other@1", "resolved", W28 + day, [{"tier": "tier-x", "cost": "7.00"}], tenant="t2")
    return engine


def report(engine: Engine, tenant: str = "t1", weeks: int = 4) -> CostReport:
    with Session(engine) as s:
        return cost_report(s, tenant, weeks, now=NOW)


def test_by_workflow_carries_the_spend_of_failures(filled: Engine) -> None:
    r = report(filled)
    assert [w.workflow for w in r.by_workflow] == ["refund@1", "triage@2"]  # most spend first
    refund, triage = r.by_workflow
    assert (refund.name, refund.version) == ("refund", "1")
    assert (refund.tasks, refund.resolved, refund.unresolved, refund.escalated, refund.without_outcome) == (
        4, 2, 1, 0, 1,
    )  # fmt: skip
    assert (refund.model_calls, refund.failed_calls) == (5, 1)
    assert refund.spend_usd == D("0.136")
    assert refund.spend_not_resolved_usd == D("0.021")
    assert refund.cost_per_resolved_usd == D("0.068") == refund.spend_usd / refund.resolved
    assert refund.estimated_usd == D("0.100") and refund.estimated_calls == 1
    assert refund.estimated_share == 0.7353  # 0.100 / 0.136

    assert (triage.tasks, triage.resolved, triage.escalated, triage.without_outcome) == (2, 0, 1, 1)
    assert triage.spend_usd == D("0.050") == triage.spend_not_resolved_usd
    assert triage.cost_per_resolved_usd is None
    assert triage.estimated_share == 0.0


def test_totals_and_tenant_isolation(filled: Engine) -> None:
    t = report(filled).totals
    assert (t.tasks, t.resolved, t.unresolved, t.escalated, t.without_outcome) == (6, 2, 1, 1, 2)
    assert t.spend_usd == D("0.186")
    assert t.cost_per_resolved_usd == D("0.093")
    assert t.spend_not_resolved_usd == D("0.071")
    assert (t.model_calls, t.failed_calls, t.prompt_tokens, t.completion_tokens) == (6, 1, 490, 105)

    other = report(filled, "t2")
    assert other.totals.tasks == 2 and other.totals.spend_usd == D("12.00")
    assert [t.tier for t in other.by_tier] == ["tier-x", "tier-open"]
    assert report(filled, "nobody").totals.tasks == 0


def test_by_week_shows_every_week_and_zero_for_empty_ones(filled: Engine) -> None:
    r = report(filled)
    assert (r.since, r.until) == (W25, W28 + timedelta(weeks=1))
    rows = {w.week: w for w in r.by_week}
    assert list(rows) == ["2026-W25", "2026-W26", "2026-W27", "2026-W28"]
    assert [w.starts for w in r.by_week] == [W25, W26, W27, W28]
    w25, w26, w27, w28 = r.by_week
    assert (w25.tasks, w25.resolved, w25.spend_usd, w25.cost_per_resolved_usd) == (1, 0, D(0), None)
    assert (w26.tasks, w26.resolved, w26.spend_usd, w26.cost_per_resolved_usd) == (3, 1, D("0.151"), D("0.151"))  # fmt: skip
    assert (w27.tasks, w27.resolved, w27.spend_usd, w27.model_calls, w27.cost_per_resolved_usd) == (
        0, 0, D(0), 0, None,
    )  # fmt: skip
    assert (w28.tasks, w28.resolved, w28.spend_usd, w28.cost_per_resolved_usd) == (2, 1, D("0.035"), D("0.035"))  # fmt: skip
    assert sum((w.spend_usd for w in r.by_week), D(0)) == r.totals.spend_usd

    longer = report(filled, weeks=5)
    assert longer.by_week[0].week == "2026-W24"
    assert longer.totals.spend_usd == D("1.186")  # the task just before W25 is in W24


def test_by_tier_names_the_models_that_served_it(filled: Engine) -> None:
    tiers = report(filled).by_tier
    assert [t.tier for t in tiers] == ["tier-frontier", "tier-open", "tier-slm"]
    frontier, open_, slm = tiers
    assert (frontier.calls, frontier.spend_usd, frontier.estimated_usd) == (2, D("0.150"), D("0.100"))
    assert [(m.model, m.calls, m.spend_usd) for m in frontier.models] == [
        ("unknown", 1, D("0.100")),
        ("demo-frontier", 1, D("0.050")),
    ]
    assert (open_.calls, open_.failed_calls, open_.prompt_tokens, open_.completion_tokens) == (3, 1, 400, 60)
    assert open_.spend_usd == D("0.035") and [m.model for m in open_.models] == ["demo-open"]
    assert slm.spend_usd == D("0.001")
    assert sum((t.spend_usd for t in tiers), D(0)) == report(filled).totals.spend_usd


def test_json_carries_money_as_exact_strings(filled: Engine) -> None:
    data = report(filled).model_dump(mode="json")
    refund, triage = data["by_workflow"]
    assert refund["spend_usd"] == "0.136" and refund["cost_per_resolved_usd"] == "0.068"
    assert triage["cost_per_resolved_usd"] is None
    assert data["by_week"][2]["spend_usd"] == "0.00"
    assert data["totals"]["estimated_share"] == 0.5376  # 0.100 / 0.186


def test_cost_per_resolved_is_rounded_at_the_money_scale() -> None:
    assert per_resolved(D("0.1"), 3) == D("0.033333333")
    assert per_resolved(D("0.2"), 3) == D("0.066666667")
    assert per_resolved(D("1"), 0) is None


def test_a_fixed_number_of_queries_whatever_the_number_of_tasks(filled: Engine) -> None:
    def queries(engine: Engine) -> int:
        seen: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            report(engine)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    before = queries(filled)
    with session_scope(filled) as s:
        for _ in range(20):
            add_task(s, "bulk@1", "resolved", W27, [{"tier": "tier-slm", "cost": "0.000000001"}])
    assert queries(filled) == before == 2
    assert report(filled).by_week[2].cost_per_resolved_usd == D("0.000000001")


@pytest.mark.parametrize("weeks", [0, -1, 53, 1000])
def test_weeks_out_of_range_are_refused(engine: Engine, weeks: int) -> None:
    with pytest.raises(CostReportError, match="from 1 to 52"):
        report(engine, weeks=weeks)


def test_one_week_is_the_current_week_and_an_empty_tenant_is_all_zeros(engine: Engine) -> None:
    r = report(engine, weeks=1)
    assert [w.week for w in r.by_week] == ["2026-W28"]
    assert r.totals.tasks == 0 and r.totals.spend_usd == D(0) and r.totals.cost_per_resolved_usd is None
    assert r.totals.estimated_share is None and r.by_workflow == [] and r.by_tier == []


def test_week_start_is_monday_midnight_utc() -> None:
    assert week_start(NOW) == W28
    naive = datetime(2026, 7, 5, 23, 59)  # noqa: DTZ001 - SQLite hands back naive UTC datetimes
    assert week_start(naive) == W27
    assert week_start(datetime(2026, 1, 1, tzinfo=UTC)).isocalendar()[:2] == (2026, 1)
