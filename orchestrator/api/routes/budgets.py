"""/api/budgets: what each budget of a month allows and has spent; an admin sets tenant limits.

    GET /api/budgets?month=2026-11          tenant, agent and tool budgets + the month's task counters
    PUT /api/budgets/{scope}                scope: tenant_month | agent_month | tool_month | task_max
        {"subject": "", "limit_usd": "100.00", "on_breach": "stop"}

Both are for admins (`budget:read`, `budget:write`) and only ever see the caller's tenant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.deps import Allowed, StateDep
from orchestrator.api.errors import PROBLEMS, ServiceUnavailable, Unprocessable
from orchestrator.budgets.rules import (
    MAX_USD,
    BudgetError,
    BudgetLine,
    BudgetReport,
    check_month,
    current_month,
)
from orchestrator.budgets.service import BudgetService
from orchestrator.services.access import Principal

router = APIRouter(prefix="/api/budgets", tags=["budgets"], responses=PROBLEMS)

TenantScope = Literal["tenant_month", "agent_month", "tool_month", "task_max"]


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(
        "", max_length=120, description="agent or tool name for agent_month / tool_month; else empty"
    )
    limit_usd: Decimal = Field(ge=0, le=MAX_USD, decimal_places=9, description='USD, e.g. "100.00"')
    on_breach: Literal["pause", "stop"] | None = Field(
        None, description="pause: the task waits at a budget-raise checkpoint; stop: the step fails"
    )


def get_budgets(state: StateDep) -> BudgetService:
    budgets: BudgetService | None = getattr(state, "budgets", None)
    if budgets is None:
        raise ServiceUnavailable("Budgets are not configured in this API process.")
    return budgets


BudgetsDep = Annotated[BudgetService, Depends(get_budgets)]


@router.get("", response_model=BudgetReport, summary="Budgets of a month with limit, spent, reserved")
def list_budgets(
    user: Annotated[Principal, Depends(Allowed("budget", "read"))],
    budgets: BudgetsDep,
    month: Annotated[str | None, Query(description="YYYY-MM (UTC); default: this month")] = None,
) -> BudgetReport:
    try:
        return budgets.list_budgets(user.tenant_id, check_month(month or current_month()))
    except BudgetError as exc:
        raise Unprocessable(str(exc)) from exc


@router.put("/{scope}", response_model=BudgetLine, summary="Set a tenant, agent, tool or per-task limit")
def set_budget(
    scope: Annotated[TenantScope, Path(description="tenant_month | agent_month | tool_month | task_max")],
    user: Annotated[Principal, Depends(Allowed("budget", "write"))],
    body: BudgetIn,
    budgets: BudgetsDep,
) -> BudgetLine:
    """An admin's limit wins over `policies/budgets.yaml` and applies to this month's counters at once."""
    try:
        return budgets.set_tenant_budget(
            user.tenant_id, scope, body.subject, body.limit_usd, body.on_breach, user.user_id
        )
    except BudgetError as exc:
        raise Unprocessable(str(exc)) from exc
