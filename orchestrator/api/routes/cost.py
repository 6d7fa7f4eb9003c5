"""/api/cost: cost per resolved task, for admins and FinOps (`cost:read`).

    GET /api/cost?weeks=8        the last 8 ISO weeks (UTC), the current one included

Spend is every router request of every task (failed attempts, retries, unresolved tasks), so
cost per resolved task = spend / resolved tasks. Broken down by workflow, by week and by the tier
asked, with the models that served it. Only the caller's tenant; money as strings ("0.0042").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from orchestrator.api.deps import Allowed, SessionDep
from orchestrator.api.errors import PROBLEMS, Unprocessable
from orchestrator.services.access import Principal
from orchestrator.services.cost import (
    DEFAULT_WEEKS,
    MAX_WEEKS,
    MIN_WEEKS,
    CostReport,
    CostReportError,
    cost_report,
)

router = APIRouter(prefix="/api", tags=["cost"], responses=PROBLEMS)


@router.get("/cost", response_model=CostReport, summary="Cost per resolved task by workflow, week and tier")
def get_cost(
    user: Annotated[Principal, Depends(Allowed("cost", "read"))],
    db: SessionDep,
    weeks: Annotated[
        int,
        # The bounds are stated in the OpenAPI, but checked by cost_report, whose refusal says
        # "weeks must be a whole number from 1 to 52" rather than pydantic's generic wording.
        Query(
            description=f"ISO weeks back from the current one, {MIN_WEEKS} to {MAX_WEEKS}",
            json_schema_extra={"minimum": MIN_WEEKS, "maximum": MAX_WEEKS},
        ),
    ] = DEFAULT_WEEKS,
) -> CostReport:
    try:
        return cost_report(db, user.tenant_id, weeks)
    except CostReportError as exc:
        raise Unprocessable(str(exc)) from exc
