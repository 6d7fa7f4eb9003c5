"""A model call as the workflow hands it to the model-call activity: a task of the demo tenant
(riley's), the call's budget reservation made, and the `ModelCallInput` naming it. Shared by the
ledger's outage and reconcile tests."""

from __future__ import annotations

import secrets
from decimal import Decimal

from repo_paths import SHIPPED_POLICIES
from sqlalchemy.engine import Engine
from sqlmodel import select

from orchestrator.budgets.service import BudgetService, Reservation, current_month, load_service
from orchestrator.contracts import ChatMessage, ModelCallInput, RoutingFacts
from orchestrator.db import session_scope
from orchestrator.models import Task, User

RESERVED = Decimal("0.0125")


def reserved_call(
    engine: Engine, *, task_id: str | None = None, task_status: str = "running"
) -> tuple[ModelCallInput, BudgetService]:
    """(the call, the budget service that reserved RESERVED for it); a new task unless `task_id`."""
    if task_id is None:
        with session_scope(engine) as session:
            riley = session.exec(select(User).where(User.email == "riley@acme.example")).one()
            task = Task(
                tenant_id="acme", requester_id=riley.id, workflow_name="summary", workflow_version="1",
                input_text="x", definition_json="{}", status=task_status,
            )  # fmt: skip
            session.add(task)
            session.flush()
            task_id = task.id
    budgets = load_service(engine, SHIPPED_POLICIES)
    request_id = f"{task_id}/s/{secrets.token_hex(3)}"
    reservation = budgets.reserve(
        reservation_id=request_id, tenant_id="acme", task_id=task_id, step="s", agent="a",
        step_limit_usd=None, amount=RESERVED, month=current_month(),
    )  # fmt: skip
    assert isinstance(reservation, Reservation)
    call = ModelCallInput(
        facts=RoutingFacts(
            tenant_id="acme", requester_id="u", task_id=task_id, step="s", agent="a",
            category="c", risk_class="low", data_classification="internal",
        ),
        turn=1, request_id=request_id, tier="tier-slm", reservation_id=request_id,
        messages=[ChatMessage(role="user", content="hi")],
    )  # fmt: skip
    return call, budgets
