"""The Cost page: cost per resolved task by workflow, by week and spend by tier (`cost:read`).

    GET /cost?weeks=8        three server-drawn SVG charts, each with its numbers in a table

Same service as `GET /api/cost` (orchestrator.services.cost); this module only turns the report
into chart items and readable text.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from orchestrator.api.deps import SessionDep
from orchestrator.budgets.rules import usd
from orchestrator.services.cost import (
    DEFAULT_WEEKS,
    MAX_WEEKS,
    MIN_WEEKS,
    CostReport,
    CostReportError,
    check_weeks,
    cost_report,
)
from orchestrator.web.deps import WebAllowed, WebUser
from orchestrator.web.render import render

router = APIRouter(include_in_schema=False)
CostReader = Annotated[WebUser, Depends(WebAllowed("cost", "read"))]
NO_RESOLVED = "no resolved task"


def _item(label: str, value: Decimal | None, text: str | None = None, short: str = "") -> dict[str, Any]:
    # The chart only needs a float to scale a bar; the exact figure is in `text` and the table.
    return {
        "label": label,
        "short": short,
        "value": None if value is None else float(value),
        "text": text if text is not None else (usd(value) if value is not None else NO_RESOLVED),
    }


def _highest(items: list[dict[str, Any]], what: str) -> str:
    drawn = [i for i in items if i["value"] is not None]
    if not drawn:
        return f"No {what} yet."
    top = max(drawn, key=lambda i: i["value"])
    return f"Highest: {top['label']} at {top['text']}."


def charts(report: CostReport) -> dict[str, dict[str, Any]]:
    workflows = [_item(w.workflow, w.cost_per_resolved_usd) for w in report.by_workflow]
    weeks = [
        _item(w.week, w.cost_per_resolved_usd, short=w.week.split("-")[-1])
        for w in report.by_week  # oldest first, so the line of columns reads left to right
    ]
    tiers = [
        _item(t.tier, t.spend_usd, f"{usd(t.spend_usd)} · {t.calls} call{'' if t.calls == 1 else 's'}")
        for t in report.by_tier
    ]
    without = sum(1 for w in report.by_week if w.cost_per_resolved_usd is None)
    return {
        "workflow": {
            "points": workflows,
            "desc": f"{len(workflows)} workflow(s). " + _highest(workflows, "workflow with a resolved task"),
        },
        "week": {
            "points": weeks,
            "desc": f"{len(weeks)} ISO weeks, oldest first; {without} without a resolved task. "
            + _highest(weeks, "week with a resolved task"),
        },
        "tier": {"points": tiers, "desc": f"{len(tiers)} tier(s). " + _highest(tiers, "spend")},
    }


def _parse_weeks(raw: str) -> int:
    try:
        weeks = int(raw.strip())
    except ValueError:
        raise CostReportError(
            f"“{raw}” is not a number of weeks. Enter a whole number from {MIN_WEEKS} to {MAX_WEEKS}."
        ) from None
    return check_weeks(weeks)


@router.get("/cost", name="web_cost")
def cost_page(
    request: Request,
    db: SessionDep,
    user: CostReader,
    weeks: Annotated[str, Query(max_length=20)] = str(DEFAULT_WEEKS),
) -> HTMLResponse:
    context: dict[str, Any] = {"weeks": weeks, "usd": usd, "min_weeks": MIN_WEEKS, "max_weeks": MAX_WEEKS}
    try:
        report = cost_report(db, user.tenant_id, _parse_weeks(weeks))
    except CostReportError as exc:
        return render(request, "cost.html", {**context, "error": str(exc), "report": None}, 422)
    return render(request, "cost.html", {**context, "report": report, "charts": charts(report)})
