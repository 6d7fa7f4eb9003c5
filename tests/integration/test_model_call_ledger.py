"""Every router request is in the books before it is sent: a worker that dies between the router's
answer and its record leaves the request interrupted at its estimated cost, never unrecorded, and
the retried activity counts it once, in the task's cost and in the budget's spend."""

from __future__ import annotations

import dataclasses
import secrets
from decimal import Decimal
from typing import Any

import httpx
import pytest
from repo_paths import SHIPPED_POLICIES
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import Reservation, current_month, load_service
from orchestrator.contracts import ChatMessage, ModelCallInput, ReleaseInput, RoutingFacts
from orchestrator.db import session_scope
from orchestrator.models import BudgetReservation, ModelCall, Task
from orchestrator.services.switches import SwitchService
from orchestrator.services.tasks import cost_of
from workers.activities.budgets import BudgetActivities
from workers.activities.model_calls import ModelActivities
from workers.activities.model_ledger import ModelCallLedger
from workers.router_client import RouterClient

RESERVED = Decimal("0.0125")
REAL = Decimal("0.00002")
PRICES = PriceTable.load(SHIPPED_POLICIES / "prices.yaml")


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "model": "tier-slm",
            "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        },
        headers={"x-litellm-response-cost": str(REAL)},
    )


class WorkerDied(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even the activity's error handling)."""


def setup(db: Any) -> tuple[ModelCallInput, Any]:
    task = Task(
        tenant_id="acme", requester_id=db.user_ids["riley"], workflow_name="summary",
        workflow_version="1", input_text="x", definition_json="{}", status="running",
    )  # fmt: skip
    with session_scope(db.engine) as session:
        session.add(task)
    budgets = load_service(db.engine, SHIPPED_POLICIES)
    request_id = f"{task.id}/s/{secrets.token_hex(3)}"
    reservation = budgets.reserve(
        reservation_id=request_id, tenant_id="acme", task_id=task.id, step="s", agent="a",
        step_limit_usd=None, amount=RESERVED, month=current_month(),
    )  # fmt: skip
    assert isinstance(reservation, Reservation)
    call = ModelCallInput(
        facts=RoutingFacts(
            tenant_id="acme", requester_id="u", task_id=task.id, step="s", agent="a",
            category="c", risk_class="low", data_classification="internal",
        ),
        turn=1, request_id=request_id, tier="tier-slm", reservation_id=request_id,
        messages=[ChatMessage(role="user", content="hi")],
    )  # fmt: skip
    return call, budgets


def rows_of(db: Any, request_id: str) -> list[ModelCall]:
    with session_scope(db.engine) as session:
        q = select(ModelCall).where(ModelCall.request_id == request_id)
        return list(session.exec(q.order_by(ModelCall.activity_attempt, ModelCall.attempt)))


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_crash_between_answer_and_record_is_counted_once(db: Any, monkeypatch: Any) -> None:
    call, budgets = setup(db)
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answer(request)

    router = RouterClient(
        "http://router.test", "key", prices=PRICES, transport=httpx.MockTransport(handler), backoff_seconds=0
    )
    activities = ModelActivities(db.engine, router, budgets)
    env = ActivityEnvironment()

    # Attempt 1: the router answers, then the worker dies before the answer is written down.
    real_ended = ModelCallLedger._ended

    def die(self: ModelCallLedger, *args: Any) -> None:
        raise WorkerDied

    monkeypatch.setattr(ModelCallLedger, "_ended", die)
    with pytest.raises(WorkerDied):
        await env.run(activities.call, call)
    assert len(requests) == 1
    [sent] = rows_of(db, call.request_id)
    # In the books already: in flight, at the call's reservation, marked as an estimate.
    assert (sent.status, sent.ok, sent.cost_usd, sent.cost_estimated) == ("sent", False, RESERVED, True)
    with session_scope(db.engine) as session:
        assert cost_of(session, [call.facts.task_id])[call.facts.task_id].total_usd == RESERVED

    # Attempt 2 (Temporal's retry): the earlier request is interrupted, a new one is made.
    monkeypatch.setattr(ModelCallLedger, "_ended", real_ended)
    env.info = dataclasses.replace(env.info, attempt=2)
    result = await env.run(activities.call, call)
    await router.aclose()

    assert len(requests) == 2
    first, second = rows_of(db, call.request_id)
    assert (first.activity_attempt, first.status, first.cost_usd, first.cost_estimated) == (
        1, "interrupted", RESERVED, True,
    )  # fmt: skip
    assert (second.activity_attempt, second.status, second.ok, second.cost_usd) == (2, "done", True, REAL)
    assert Decimal(result.cost_usd) == RESERVED + REAL
    with session_scope(db.engine) as session:
        summary = cost_of(session, [call.facts.task_id])[call.facts.task_id]
        reservation = session.get_one(BudgetReservation, call.request_id)
    assert (summary.total_usd, summary.model_calls, summary.estimated) == (RESERVED + REAL, 2, True)
    # The reservation is settled once, with the interrupted request's estimate in the spend.
    assert (reservation.status, reservation.settled_usd) == ("settled", RESERVED + REAL)


async def test_cancelled_call_spends_what_may_have_reached_a_provider(db: Any) -> None:
    """The workflow releases the reservation of a call that never finished; a request of it that
    was sent is spent at its estimate instead of vanishing with the release."""
    call, budgets = setup(db)
    ledger = ModelCallLedger.open(db.engine, PRICES, call, activity_attempt=1)
    await ledger.sending(1)  # ...and the worker is gone
    activities = BudgetActivities(budgets, SwitchService(db.engine), PRICES)
    await ActivityEnvironment().run(activities.release, ReleaseInput(reservation_id=call.request_id))
    [row] = rows_of(db, call.request_id)
    assert (row.status, row.cost_usd) == ("interrupted", RESERVED)
    with session_scope(db.engine) as session:
        reservation = session.get_one(BudgetReservation, call.request_id)
    assert (reservation.status, reservation.settled_usd) == ("settled", RESERVED)


async def test_refused_connection_leaves_no_row(db: Any) -> None:
    call, budgets = setup(db)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise httpx.ConnectError("connection refused")
        return answer(request)

    router = RouterClient(
        "http://router.test", "key", prices=PRICES, transport=httpx.MockTransport(handler), backoff_seconds=0
    )
    result = await ActivityEnvironment().run(ModelActivities(db.engine, router, budgets).call, call)
    await router.aclose()
    [row] = rows_of(db, call.request_id)
    assert (row.attempt, row.status, row.ok, row.cost_usd) == (4, "done", True, REAL)
    assert Decimal(result.cost_usd) == REAL
