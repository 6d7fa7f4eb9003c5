"""Admin pages: budgets, kill switches, the tool policy with its explain form, people and roles.

    GET  /admin/budgets?month=YYYY-MM   limit, spent, reserved, remaining per budget; set a limit
    POST /admin/budgets                 as PUT /api/budgets/{scope}
    GET  /admin/switches                the tenant's switches and the global one, the flip history
    POST /admin/switches                as POST /api/switches, then wakes the waiting tasks
    GET  /admin/policies                the rules in force and the explain form
    POST /admin/policies/explain        as POST /api/policies/explain (htmx fragment, or the page)
    GET  /admin/users                   the tenant's people and their roles here
    POST /admin/users                   grant or revoke, as PUT / DELETE /api/users/{id}/roles/{role}

Each page calls the service the REST API calls (BudgetService, SwitchService, the policy routes'
`policies_public` / `explain_decision`, `orchestrator.services.people`); this module only reads forms and
arranges results for people. Bad input re-renders the page with the message and what was typed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.api.errors import Forbidden, ServiceError, Unprocessable
from orchestrator.budgets.rules import TENANT_SCOPES, BudgetError, BudgetLine, check_month, current_month
from orchestrator.catalog.registry import Kind
from orchestrator.services import people
from orchestrator.services.policies import ExplainRequest, explain_decision, policies_public
from orchestrator.services.state import AppState
from orchestrator.services.switches import SwitchError, wake_waiting_tasks
from orchestrator.web.deps import CsrfChecked, WebAllowed, WebUser, allowed
from orchestrator.web.render import render
from orchestrator.web.timeline import people_names

router = APIRouter(include_in_schema=False)
BudgetReader = Annotated[WebUser, Depends(WebAllowed("budget", "read"))]
BudgetWriter = Annotated[WebUser, Depends(WebAllowed("budget", "write"))]
SwitchReader = Annotated[WebUser, Depends(WebAllowed("switch", "read"))]
PolicyReader = Annotated[WebUser, Depends(WebAllowed("policy", "read"))]
PolicyExplainer = Annotated[WebUser, Depends(WebAllowed("policy", "explain"))]
UserReader = Annotated[WebUser, Depends(WebAllowed("user", "read"))]
UserWriter = Annotated[WebUser, Depends(WebAllowed("user", "write"))]
FormText = Annotated[str, Form(max_length=200)]
SCOPE_LABELS = {
    "tenant_month": "Whole tenant, per month",
    "agent_month": "One agent, per month",
    "tool_month": "One tool, per month",
    "task_max": "Most a task may be given",
}
HISTORY = 50  # flips shown; the API pages further back


def _names(state: AppState, kind: Kind) -> list[str]:
    """Agent or tool names (no versions: budgets and switches cover every version)."""
    return sorted({ref.split("@", 1)[0] for ref in state.catalog.refs(kind)})


# --- budgets -------------------------------------------------------------------------------------


def _usage(line: BudgetLine) -> dict[str, Any]:
    """The line plus what its bar needs: used = spent + reserved, as a share of the limit."""
    used = line.spent_usd + line.reserved_usd
    limit = line.limit_usd
    bar = line.scope != "task_max" and limit is not None and limit > 0
    return {
        "line": line,
        "used": used,
        "bar": bar,
        "pct": min(int(used * 100 / limit), 999) if bar and limit else 0,
        "max": f"{limit:f}" if limit is not None else "",
        "value": f"{min(used, limit):f}" if limit is not None else "",
        "high": f"{limit * Decimal('0.8'):f}" if limit is not None else "",
    }


def _budgets_page(
    request: Request,
    state: AppState,
    user: WebUser,
    month: str,
    values: dict[str, str] | None = None,
    *,
    error: str = "",
    month_error: str = "",
    saved: tuple[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    report = None if month_error else state.budgets.list_budgets(user.tenant_id, month)
    lines = [_usage(b) for b in report.budgets] if report else []
    done = next((x["line"] for x in lines if saved and (x["line"].scope, x["line"].subject) == saved), None)
    context = {
        "month": month,
        "report": report,
        "lines": lines,
        "tasks": [_usage(t) for t in report.tasks[:100]] if report else [],
        "more_tasks": max(0, len(report.tasks) - 100) if report else 0,
        "values": {"scope": "tenant_month", "subject": "", "limit_usd": "", "on_breach": ""} | (values or {}),
        "scopes": [(s, SCOPE_LABELS[s]) for s in TENANT_SCOPES],
        "subjects": _names(state, "agent") + _names(state, "tool"),
        "error": error,
        "month_error": month_error,
        "saved": done,
    }
    return render(request, "admin/budgets.html", context, status)


@router.get("/admin/budgets", name="web_admin_budgets")
def budgets_page(
    request: Request,
    state: StateDep,
    user: BudgetReader,
    month: Annotated[str, Query(max_length=20)] = "",
    saved: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    month = month.strip() or current_month()
    try:
        check_month(month)
    except BudgetError:
        message = f"The month must be a year and month such as {current_month()}; {month!r} is not one."
        return _budgets_page(request, state, user, month, month_error=message, status=422)
    scope, _, subject = saved.partition(":")
    return _budgets_page(request, state, user, month, saved=(scope, subject) if saved else None)


@router.post("/admin/budgets", name="web_admin_budget_set")
def budget_set(
    request: Request,
    state: StateDep,
    user: CsrfChecked,
    _: BudgetWriter,
    scope: FormText = "",
    subject: FormText = "",
    limit_usd: Annotated[str, Form(max_length=40)] = "",
    on_breach: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    values = {"scope": scope, "subject": subject, "limit_usd": limit_usd, "on_breach": on_breach}
    try:
        if not limit_usd.strip():
            raise BudgetError("enter the limit in USD, e.g. 100.00")
        line = state.budgets.set_tenant_budget(
            user.tenant_id, scope, subject, limit_usd.strip(), on_breach or None, user.user_id
        )
    except BudgetError as exc:
        message = f"The limit was not saved: {str(exc).rstrip('.')}."
        return _budgets_page(request, state, user, current_month(), values, error=message, status=422)
    target = request.url_for("web_admin_budgets").include_query_params(saved=f"{line.scope}:{line.subject}")
    return RedirectResponse(f"{target.path}?{target.query}", 303)


# --- kill switches -------------------------------------------------------------------------------


def _switches_page(
    request: Request,
    state: AppState,
    user: WebUser,
    db: Session,
    values: dict[str, str] | None = None,
    *,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    context = {
        "switches": state.switches.list(user.tenant_id),
        "history": state.switches.history(user.tenant_id, HISTORY),
        "history_limit": HISTORY,
        "names": people_names(db, user.tenant_id),
        "can_flip": allowed(state, user, "switch", "flip"),
        "can_global": allowed(state, user, "switch", "flip_global"),
        "subjects": {"agent": _names(state, "agent"), "tool": _names(state, "tool")},
        "values": {"scope": "tenant", "subject": "", "mode": "stop", "reason": ""} | (values or {}),
        "error": error,
    }
    db.rollback()  # nothing to write: hand the connection back
    return render(request, "admin/switches.html", context, status)


@router.get("/admin/switches", name="web_admin_switches")
def switches_page(request: Request, state: StateDep, db: SessionDep, user: SwitchReader) -> HTMLResponse:
    return _switches_page(request, state, user, db)


@router.post("/admin/switches", name="web_admin_switch_flip")
async def switch_flip(
    request: Request,
    state: StateDep,
    db: SessionDep,
    user: CsrfChecked,
    _: SwitchReader,
    background: BackgroundTasks,
    scope: FormText = "",
    subject: FormText = "",
    active: Annotated[str, Form(max_length=10)] = "",
    mode: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """`active` is the button pressed: "on" or "off". Authorization as POST /api/switches."""
    act = "flip_global" if scope == "global" else "flip"
    if not allowed(state, user, "switch", act):
        raise Forbidden(
            f"Your roles ({', '.join(user.principal.roles) or 'none'}) do not allow switch:{act}."
        )
    values = {"scope": scope, "subject": subject, "mode": mode, "reason": reason}
    tenant_id = "" if scope == "global" else user.tenant_id
    try:
        if active not in ("on", "off"):
            raise SwitchError("press Turn on or Turn off")
        await run_in_threadpool(
            lambda: state.switches.flip(
                scope=scope,
                tenant_id=tenant_id,
                subject=subject,
                active=active == "on",
                mode=mode or None,
                reason=reason,
                actor=user.user_id,
            )
        )
    except SwitchError as exc:
        message = f"The switch was not changed: {str(exc).rstrip('.')}."
        return await run_in_threadpool(
            _switches_page, request, state, user, db, values, error=message, status=422
        )
    background.add_task(wake_waiting_tasks, state, tenant_id or None)
    return RedirectResponse(request.url_for("web_admin_switches").path, 303)


# --- policies ------------------------------------------------------------------------------------


def _json_object(raw: str, what: str, *, optional: bool = False) -> dict[str, Any] | None:
    if optional and not raw.strip():
        return None
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise Unprocessable(
            f"{what} must be a JSON object: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    except RecursionError as exc:
        raise Unprocessable(f"{what} is nested too deeply; send a flat JSON object.") from exc
    if not isinstance(value, dict):
        raise Unprocessable(
            f'{what} must be a JSON object: got {type(value).__name__}, e.g. {{"amount": 250}}.'
        )
    return value


@router.get("/admin/policies", name="web_admin_policies")
def policies_page(request: Request, state: StateDep, user: PolicyReader) -> HTMLResponse:
    return _policies_page(request, state, user, {})


def _policies_page(
    request: Request,
    state: AppState,
    user: WebUser,
    values: dict[str, str],
    status: int = 200,
    **explained: Any,
) -> HTMLResponse:
    context = {
        "policy": policies_public(state, user.tenant_id),
        "values": {"agent": "", "tool": "", "args": "{}", "facts": ""} | values,
        "agents": _names(state, "agent"),
        "tools": _names(state, "tool"),
        "result": explained.get("result"),
        "error": explained.get("error", ""),
    }
    return render(request, "admin/policies.html", context, status)


@router.post("/admin/policies/explain", name="web_admin_policy_explain")
def policy_explain(
    request: Request,
    state: StateDep,
    db: SessionDep,
    user: CsrfChecked,
    _: PolicyExplainer,
    agent: FormText = "",
    tool: FormText = "",
    args: Annotated[str, Form(max_length=20000)] = "",
    facts: Annotated[str, Form(max_length=5000)] = "",
) -> HTMLResponse:
    values = {"agent": agent, "tool": tool, "args": args, "facts": facts}
    result, error, status = None, "", 200
    try:
        if not agent.strip() or not tool.strip():
            raise Unprocessable(
                "Name both the agent and the tool to explain, e.g. refund_agent and issue_refund."
            )
        body = ExplainRequest(
            agent=agent.strip(),
            tool=tool.strip(),
            args=_json_object(args, "Arguments"),
            facts=_json_object(facts, "Facts", optional=True),
        )
        result = explain_decision(state, db, user.tenant_id, body)
    except ValidationError as exc:
        error, status = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), 422
    except ServiceError as exc:
        if exc.status == 403:
            raise
        error, status = exc.detail, 422
    db.rollback()
    if request.headers.get("hx-request"):
        context = {"result": result, "error": error}
        return render(request, "admin/_explain.html", context, status)
    return _policies_page(request, state, user, values, status, result=result, error=error)


# --- people --------------------------------------------------------------------------------------


def _users_page(
    request: Request,
    state: AppState,
    user: WebUser,
    db: Session,
    values: dict[str, str] | None = None,
    *,
    error: str = "",
    changed: str = "",
    status: int = 200,
) -> HTMLResponse:
    listing = people.list_people(db, user.tenant_id)
    db.rollback()
    context = {
        "people": listing.items,
        "roles": listing.roles,
        "can_write": allowed(state, user, "user", "write"),
        "values": {"user_id": "", "role": ""} | (values or {}),
        "error": error,
        "changed": next((p for p in listing.items if p.id == changed), None),
    }
    return render(request, "admin/users.html", context, status)


@router.get("/admin/users", name="web_admin_users")
def users_page(
    request: Request,
    state: StateDep,
    db: SessionDep,
    user: UserReader,
    changed: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    return _users_page(request, state, user, db, changed=changed)


@router.post("/admin/users", name="web_admin_user_roles")
def user_roles(
    request: Request,
    state: StateDep,
    db: SessionDep,
    user: CsrfChecked,
    _: UserWriter,
    user_id: Annotated[str, Form(max_length=40)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    op: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """`op` is grant or revoke; another tenant's user id is a 404 page (the service decides)."""
    values = {"user_id": user_id, "role": role}
    change = {"grant": people.grant_role, "revoke": people.revoke_role}.get(op)
    try:
        if change is None:
            raise Unprocessable("Choose Grant or Revoke.")
        if not role:
            raise Unprocessable(f"Choose a role: one of {', '.join(people.ROLES)}.")
        change(db, user.tenant_id, user.user_id, user_id, role)
    except ServiceError as exc:
        if exc.status not in (409, 422):
            raise
        db.rollback()
        return _users_page(request, state, user, db, values, error=exc.detail, status=exc.status)
    target = request.url_for("web_admin_users").include_query_params(changed=user_id)
    return RedirectResponse(f"{target.path}?{target.query}", 303)
